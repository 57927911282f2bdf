/** The circuit breaker's and the pause's decisions, as plain state: no workflow, no server. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainControl } from '../src/workflows/domainControl.js';

const BREAKER = { minFailures: 20, failureRatio: 0.4 };
const PAUSE = { by: 'ops', at: '2026-12-06T00:00:00.000Z' };

test('the breaker trips at the minimum number of failures when they are the given share of the finished', () => {
  const control = new DomainControl(BREAKER);
  assert.equal(control.tripReason({ failed: 19 }), undefined, 'under the minimum');
  assert.equal(control.tripReason({ failed: 20, completed: 31 }), undefined, '20 of 51 is under 40 %');
  assert.equal(control.tripReason({ failed: 20, completed: 30 }), 'circuit breaker: 20 of 50 users failed');
  // Other endings (a person's answer) count as finished, not as failed.
  assert.equal(control.tripReason({ failed: 20, denied: 20, expired: 11 }), undefined);
});

test('no breaker, or a run already paused, never trips', () => {
  assert.equal(new DomainControl(undefined).tripReason({ failed: 1000 }), undefined);
  const control = new DomainControl(BREAKER);
  control.pause(PAUSE);
  assert.equal(control.tripReason({ failed: 1000 }), undefined);
});

test('resuming forgives the failures so far: it trips again only on as many new ones', () => {
  const control = new DomainControl(BREAKER);
  control.pause(PAUSE);
  control.resume({ failed: 50, completed: 10 });
  assert.equal(control.paused, undefined);
  assert.equal(control.tripReason({ failed: 69, completed: 10 }), undefined, '19 new failures');
  assert.equal(control.tripReason({ failed: 70, completed: 41 }), undefined, '20 of 51 is under 40 %');
  assert.equal(control.tripReason({ failed: 70, completed: 20 }), 'circuit breaker: 20 of 30 users failed');
});

test('what is carried across continue-as-new decides the same way', () => {
  const control = new DomainControl(BREAKER);
  control.resume({ failed: 50 });
  control.pause(PAUSE);
  const carried = new DomainControl(BREAKER, control.carry());
  assert.deepEqual(carried.paused, PAUSE);
  carried.resume({ failed: 50 });
  assert.equal(carried.tripReason({ failed: 69 }), undefined);
  assert.equal(carried.tripReason({ failed: 70 }), 'circuit breaker: 20 of 20 users failed');
});
