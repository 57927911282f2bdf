import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '../src/store/groupCommit.js';

/** A batch function that answers each input doubled, records its batches and lets the test decide when they end. */
function recordingRun() {
  const batches: number[][] = [];
  const pending: Array<() => void> = [];
  const run = (inputs: number[]) => {
    batches.push(inputs);
    return new Promise<number[]>((resolve) => pending.push(() => resolve(inputs.map((i) => i * 2))));
  };
  const finishNext = async () => {
    while (pending.length === 0) await new Promise((resolve) => setImmediate(resolve));
    pending.shift()!();
  };
  return { run, batches, finishNext };
}

test('a call on an idle batcher leaves alone; calls made meanwhile leave together when it returns', async () => {
  const { run, batches, finishNext } = recordingRun();
  const commit = new GroupCommit(run, { maxBatch: 100 });
  const first = commit.submit(1);
  const rest = [2, 3, 4, 5].map((i) => commit.submit(i));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(batches, [[1]]);
  await finishNext();
  assert.equal(await first, 2);
  await finishNext();
  assert.deepEqual(await Promise.all(rest), [4, 6, 8, 10]);
  assert.deepEqual(batches, [[1], [2, 3, 4, 5]]);
});

test('batches hold at most maxBatch calls, in arrival order', async () => {
  const { run, batches, finishNext } = recordingRun();
  const commit = new GroupCommit(run, { maxBatch: 3 });
  const all = Promise.all(Array.from({ length: 8 }, (_, i) => commit.submit(i)));
  for (let i = 0; i < 4; i++) await finishNext();
  assert.deepEqual(await all, [0, 2, 4, 6, 8, 10, 12, 14]);
  assert.deepEqual(batches, [[0], [1, 2, 3], [4, 5, 6], [7]]);
});

test('a failed batch fails its own calls only, and the next batch still goes', async () => {
  let calls = 0;
  const commit = new GroupCommit(
    async (inputs: number[]) => {
      calls += 1;
      await new Promise((resolve) => setImmediate(resolve));
      if (inputs.includes(13)) throw new Error('unlucky batch');
      return inputs;
    },
    { maxBatch: 10 },
  );
  const lucky = commit.submit(1);
  const unlucky = [12, 13].map((i) => commit.submit(i));
  assert.equal(await lucky, 1);
  for (const call of unlucky) await assert.rejects(call, /unlucky batch/);
  assert.equal(await commit.submit(14), 14);
  assert.equal(calls, 3);
});

test('a batch answered with the wrong number of outputs fails its calls instead of mismatching them', async () => {
  const commit = new GroupCommit(async (inputs: number[]) => inputs.slice(1), { maxBatch: 10 });
  await assert.rejects(commit.submit(1), /a batch of 1 was answered with 0 outputs/);
});

test('a batch function that throws instead of rejecting fails its batch, and the next batch still goes', async () => {
  let calls = 0;
  const commit = new GroupCommit(
    (inputs: number[]) => {
      calls += 1;
      if (calls === 1) throw new Error('thrown synchronously');
      return Promise.resolve(inputs);
    },
    { maxBatch: 10 },
  );
  await assert.rejects(commit.submit(1), /thrown synchronously/);
  assert.equal(await commit.submit(2), 2);
  assert.throws(() => new GroupCommit(async (inputs: number[]) => inputs, { maxBatch: 0 }), RangeError);
});
