import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BATCH_SIZE, POLL, UsersWindow } from '../src/workflows/usersWindow.js';

const fresh = { nextPosition: 0, counts: {} };

test('the window fills in batches of at most 50 and never past its size', () => {
  const window = new UsersWindow(120, 1000, fresh);
  assert.deepEqual(window.takeBatch(), { from: 0, size: BATCH_SIZE });
  assert.deepEqual(window.takeBatch(), { from: 50, size: BATCH_SIZE });
  // 20 places left: under the minimum batch of 30 (a quarter of the window), so it waits for more.
  assert.equal(window.takeBatch(), undefined);
  assert.equal(window.inFlight, 100);
  window.update({ completed: 8, failed: 2 });
  assert.equal(window.inFlight, 90);
  assert.deepEqual(window.takeBatch(), { from: 100, size: 30 });
  assert.equal(window.inFlight, 120);
});

test('the last users of a domain start even when they are fewer than the minimum batch', () => {
  const window = new UsersWindow(500, 53, fresh);
  assert.deepEqual(window.takeBatch(), { from: 0, size: 50 });
  assert.deepEqual(window.takeBatch(), { from: 50, size: 3 });
  assert.equal(window.takeBatch(), undefined);
  window.update({ completed: 52 });
  assert.equal(window.done, false);
  window.update({ completed: 52, expired: 1 });
  assert.equal(window.done, true);
});

test('while users finish, the outcomes are read about as often as a minimum batch finishes', () => {
  const window = new UsersWindow(200, 1000, fresh); // a minimum batch of 50
  for (let i = 0; i < 4; i += 1) window.takeBatch();
  assert.equal(window.pollDelayMs, POLL.firstMs, 'users just started: read soon');
  window.update({ completed: 10 });
  assert.equal(window.pollDelayMs, 5 * POLL.firstMs, '10 finished in a second: 50 take five');
  assert.deepEqual(window.takeBatch(), undefined, '10 places: under the minimum batch');
  window.update({ completed: 60 });
  assert.equal(window.pollDelayMs, 5 * POLL.firstMs, 'the same pace');
  assert.deepEqual(window.takeBatch(), { from: 200, size: 50 });
  assert.equal(window.pollDelayMs, 5 * POLL.firstMs, 'a started batch is read at the pace already seen');
  window.update({ completed: 160 });
  assert.equal(window.pollDelayMs, 2_500, 'twice the pace: half the wait');
  window.update({ completed: 161 });
  assert.equal(window.pollDelayMs, POLL.longestMs, 'a trickle: no less often than the longest wait');
});

test('without progress the outcomes are read less and less often, down to the longest wait', () => {
  const window = new UsersWindow(100, 1000, fresh);
  window.takeBatch();
  window.update({});
  window.update({});
  assert.equal(window.pollDelayMs, POLL.firstMs * 4);
  for (let i = 0; i < 20; i += 1) window.update({});
  assert.equal(window.pollDelayMs, POLL.longestMs);
  window.update({ completed: 30 });
  assert.equal(window.pollDelayMs, 40_000, '30 finished in the last minute: the 20 left take 40 s');
});

test("the domain's last users are read again as soon as they may have finished", () => {
  const window = new UsersWindow(100, 100, fresh); // a minimum batch of 25
  window.takeBatch();
  window.takeBatch();
  window.update({ completed: 5 });
  assert.equal(window.pollDelayMs, 5 * POLL.firstMs, '5 finished in a second: 25 take five');
  window.update({ completed: 90 });
  assert.equal(window.pollDelayMs, POLL.firstMs, '10 left at 17 a second');
});

test('a window rebuilt from what continue-as-new carries goes on where it was', () => {
  const window = new UsersWindow(100, 1000, fresh);
  window.takeBatch();
  window.takeBatch();
  window.update({ completed: 7 });
  const next = new UsersWindow(100, 1000, { nextPosition: window.next, counts: window.counts });
  assert.equal(next.next, 100);
  assert.equal(next.inFlight, 93);
  assert.deepEqual(next.takeBatch(), undefined, '7 places: under the minimum batch of 25');
});
