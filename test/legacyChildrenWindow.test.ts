import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LegacyChildrenWindow as UsersWindow } from '../src/workflows/legacyChildrenWindow.js';
import { BATCH_SIZE } from '../src/workflows/usersWindow.js';

const fresh = { nextPosition: 0, inFlight: [], counts: {} };

test('the window fills in batches of at most 50 and never past its size', () => {
  const window = new UsersWindow(120, 1000, fresh);
  assert.deepEqual(window.takeBatch(), { from: 0, size: BATCH_SIZE });
  assert.deepEqual(window.takeBatch(), { from: 50, size: BATCH_SIZE });
  // 20 places left: under the minimum batch of 30 (a quarter of the window), so it waits for more.
  assert.equal(window.takeBatch(), undefined);
  assert.equal(window.inFlight.size, 100);
  for (let position = 0; position < 10; position += 1) window.finish({ position, state: 'completed' });
  assert.deepEqual(window.takeBatch(), { from: 100, size: 30 });
  assert.equal(window.inFlight.size, 120);
});

test('the last users of a domain start even when they are fewer than the minimum batch', () => {
  const window = new UsersWindow(500, 53, fresh);
  assert.deepEqual(window.takeBatch(), { from: 0, size: 50 });
  assert.deepEqual(window.takeBatch(), { from: 50, size: 3 });
  assert.equal(window.takeBatch(), undefined);
  assert.equal(window.done, false);
  for (let position = 0; position < 53; position += 1) window.finish({ position, state: 'completed' });
  assert.equal(window.done, true);
});

test('a result is counted once, and only for a user in flight', () => {
  const window = new UsersWindow(10, 10, fresh);
  window.takeBatch();
  window.finish({ position: 3, state: 'failed', reason: 'x' });
  window.finish({ position: 3, state: 'failed', reason: 'x' });
  window.finish({ position: 42, state: 'completed' });
  assert.deepEqual(window.counts, { failed: 1 });
  assert.equal(window.inFlight.size, 9);
});

test('what a window carries across continue-as-new rebuilds the same window', () => {
  const window = new UsersWindow(100, 1000, fresh);
  window.takeBatch();
  window.takeBatch();
  window.finish({ position: 7, state: 'completed' });
  const next = new UsersWindow(100, 1000, window.carry());
  assert.equal(next.next, 100);
  assert.deepEqual(
    [...next.inFlight].sort((a, b) => a - b),
    [...window.inFlight].sort((a, b) => a - b),
  );
  assert.deepEqual(next.counts, { completed: 1 });
  next.finish({ position: 8, state: 'expired' });
  assert.deepEqual(window.counts, { completed: 1 }, 'the carried counts are a copy');
});
