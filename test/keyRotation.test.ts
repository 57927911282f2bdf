/**
 * Rotating PAYLOAD_ENCRYPTION_KEYS while downgrades wait: runs started under key 1 complete after the worker and
 * the client move to "key 2, key 1", their new payloads are written under key 2, and a process that still knows
 * only key 1 can no longer read them.
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { IndividualClient } from '../src/client.js';
import { KEY_ID_METADATA, PayloadDecryptionError } from '../src/codec/encryptionCodec.js';

import { assertHistoryHoldsNoSecrets } from '../harness/histories.js';
import {
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  startStack,
  TEST_PAYLOAD_ENCRYPTION_KEYS,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';

const KEY_2 = `test2:${Buffer.alloc(32, 0x2b).toString('base64')}`;
const ROTATED_KEYS = `${KEY_2},${TEST_PAYLOAD_ENCRYPTION_KEYS}`;
const RUNS = 3;

let stack: Stack;
let worker: RunningWorker | undefined;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
});

test('downgrades started under key 1 complete after the worker and client move to key 2', async () => {
  worker = await stack.startWorker();
  const started = [];
  for (let i = 1; i <= RUNS; i++) {
    const user = await createReadWriteUser(stack, `rotation${i}@example.com`);
    const { workflowId } = await stack.individual.start({
      sub: user.sub,
      refreshToken: user.refresh_token,
    });
    const status = await waitForState(stack, workflowId, (state) => state === 'awaiting_reauthorization');
    started.push({ user, workflowId, authorizationUrl: status.authorizationUrl! });
  }

  // The deployment rolls: the key-1 worker stops, a worker and a client with "key 2, key 1" take over.
  await worker.stop();
  const rotated = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: ROTATED_KEYS });
  assert.equal(rotated.codec.activeKeyId, 'test2');
  worker = await stack.startWorker({ dataConverter: rotated.dataConverter });
  const rotatedClient = new Client({
    connection: stack.env.connection,
    dataConverter: rotated.dataConverter,
  });
  const individual = new IndividualClient({
    temporal: rotatedClient,
    taskQueue: stack.taskQueue,
    store: stack.store,
    defaults: { deadlineMs: 60_000, reminderIntervalMs: 30_000, maxPrompts: 3 },
  });

  for (const { user, workflowId, authorizationUrl } of started) {
    assert.equal((await individual.get(workflowId)).state, 'awaiting_reauthorization');
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    assert.equal((await followRedirect(location)).status, 303);
    const result = await individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed', `${workflowId} completed after the rotation`);
    assert.equal(result.providerName, 'google_free_busy');
  }

  for (const { workflowId } of started) {
    const events = (await rotatedClient.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const input = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    const result = events.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads ?? [];
    assert.ok(input.length > 0 && result.length > 0);
    assert.deepEqual(input.map(keyId), ['test1'], 'the input was written under key 1');
    assert.deepEqual(result.map(keyId), ['test2'], 'the result was written under key 2');
    // A process still on key 1 alone cannot read what the rotated worker wrote.
    await assert.rejects(stack.codec.decode(result), PayloadDecryptionError);
  }

  await assertHistoryHoldsNoSecrets(
    stack,
    started.map(({ workflowId }) => workflowId),
    { plaintexts: started.map(({ user }) => user.email) },
  );

  // New runs go entirely under key 2.
  const user = await createReadWriteUser(stack, 'rotation-new@example.com');
  const { workflowId } = await individual.start({
    sub: user.sub,
    refreshToken: user.refresh_token,
  });
  const events = (await rotatedClient.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const input = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  assert.deepEqual(input.map(keyId), ['test2']);
});

function keyId(payload: Payload): string {
  return Buffer.from(payload.metadata?.[KEY_ID_METADATA] ?? []).toString();
}
