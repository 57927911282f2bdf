/**
 * SERVICE_ROLES as docker-compose.yml deploys them: a worker process and a callback-server process (with the codec
 * server) sharing PostgreSQL and Temporal. Callbacks reach the worker's downgrades only through Temporal, and the
 * callback server keeps accepting them while no worker runs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import got from 'got';
import { z } from 'zod';
import { IndividualClient } from '../src/client.js';
import type { RunningSimulator } from '../simulator/server.js';
import { CredentialStore } from '../src/store/credentialStore.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { assertEveryHistoryHoldsNoSecrets } from '../harness/histories.js';
import { freePort } from '../harness/ports.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import { CLIENT, decideOnConsentPage, followRedirect, signalCount } from '../harness/stack.js';
import { waitUntil } from '../harness/waitUntil.js';

const CREDENTIAL_KEYS = Keyring.generateSpec('roles1');
const taskQueue = `roles-${Date.now()}`;

let env: TestWorkflowEnvironment;
let simulator: RunningSimulator;
let callbackPort: number;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let database: Database;
let individual: IndividualClient;
let worker: ServiceProcess | undefined;
let callbacks: ServiceProcess | undefined;
let workerMetricsPort: number;

before(async () => {
  ({ env, simulator, callbackPort } = await startServiceSurroundings({ perSecond: 50, perMinute: 100_000 }));
  scratch = await createScratchDatabase(testPostgresUrl(), 'roles');
  database = await openDatabase(scratch.url);
  individual = new IndividualClient({
    temporal: env.client,
    taskQueue,
    store: new CredentialStore(database, Keyring.parse(CREDENTIAL_KEYS)),
    defaults: { deadlineMs: 120_000, reminderIntervalMs: 120_000, maxPrompts: 1 },
  });
  workerMetricsPort = await freePort();
  callbacks = await startRole('callbacks,codec');
  worker = await startRole('worker');
});

after(async () => {
  await worker?.stop('SIGKILL');
  await callbacks?.stop('SIGKILL');
  await database?.close();
  await scratch?.drop();
  await simulator?.close();
  await env?.teardown();
});

function startRole(roles: 'worker' | 'callbacks,codec'): Promise<ServiceProcess> {
  const isWorker = roles === 'worker';
  return startServiceProcess({
    temporalAddress: env.address,
    taskQueue,
    databaseUrl: scratch.url,
    credentialKeys: CREDENTIAL_KEYS,
    simulatorUrl: simulator.url,
    // The same configuration for both, as in docker-compose.yml: the worker's consent links name the callback
    // server, and a worker that listened on that port too would fail to start (it is taken).
    callbackPort,
    readyUrl: isWorker ? `http://127.0.0.1:${workerMetricsPort}/metrics` : undefined,
    env: {
      SERVICE_ROLES: roles,
      METRICS_BIND_ADDRESS: isWorker ? `127.0.0.1:${workerMetricsPort}` : 'off',
    },
  });
}

const Account = z.object({ sub: z.string(), email: z.string(), refresh_token: z.string() });

async function waitingDowngrade(email: string) {
  const account = Account.parse(
    await got.post(`${simulator.url}/_sim/accounts`, { json: { email, client_id: CLIENT.clientId } }).json(),
  );
  const { workflowId } = await individual.start({
    sub: account.sub,
    refreshToken: account.refresh_token,
  });
  const authorizationUrl = await waitUntil(
    `${workflowId} asks for consent`,
    async () => (await individual.get(workflowId)).authorizationUrl,
  );
  const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email });
  return { workflowId, location };
}

test('a worker process and a callback-server process complete downgrades together', async () => {
  const people = await Promise.all([1, 2, 3].map((i) => waitingDowngrade(`roles${i}@example.com`)));
  for (const { workflowId, location } of people) {
    assert.equal(new URL(location).port, String(callbackPort));
    assert.equal((await followRedirect(location)).status, 303);
    const result = await individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    assert.equal(await signalCount({ env }, workflowId), 1);
  }
});

test('with no worker running, the callback server still accepts a callback; a new worker completes it', async () => {
  const { workflowId, location } = await waitingDowngrade('roles-no-worker@example.com');
  assert.equal(await worker!.stop('SIGTERM'), 0);
  worker = undefined;
  assert.equal((await followRedirect(location)).status, 303);
  // Recorded in Temporal and waiting for a worker: two seconds later no workflow task has started since the
  // signal (the callback-server process runs none; a status query would need one).
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const signalled = events.findIndex((event) => event.workflowExecutionSignaledEventAttributes);
  assert.ok(signalled >= 0, 'the signal is in the history');
  assert.equal(
    events.slice(signalled).some((event) => event.workflowTaskStartedEventAttributes),
    false,
    'no worker took the workflow task',
  );
  worker = await startRole('worker');
  assert.equal((await individual.waitForResult(workflowId)).state, 'completed');
  assert.equal(await signalCount({ env }, workflowId), 1);
});

test('every run stored by the server holds encrypted payloads and no issued secret or e-mail', async () => {
  await assertEveryHistoryHoldsNoSecrets({ env, simulator }, { atLeast: 4 });
});
