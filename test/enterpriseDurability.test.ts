/**
 * The service (worker and callback server, `src/main.ts`) runs as its own process on PostgreSQL and is killed with
 * SIGKILL twice while a domain moves; started again, it ends with the same counts, every user recorded once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import got from 'got';
import { z } from 'zod';
import { EnterpriseClient } from '../src/client.js';
import { ENCRYPTED_ENCODING } from '../src/codec/encryptionCodec.js';
import type { RunningSimulator } from '../simulator/server.js';
import { CredentialStore } from '../src/store/credentialStore.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { EnterpriseUsers } from '../src/store/enterpriseUsers.js';
import { enterpriseDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import { CLIENT, decideOnConsentPage, followRedirect } from '../harness/stack.js';
import { assertEveryHistoryHoldsNoSecrets } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';

const USERS = 120;
const DOMAIN = 'durable.example.org';
const CREDENTIAL_KEYS = Keyring.generateSpec('durable1');
const EMAILS = Array.from({ length: USERS }, (_, i) => `person${i}@${DOMAIN}`);

let env: TestWorkflowEnvironment;
let simulator: RunningSimulator;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let database: Database;
let enterprise: EnterpriseClient;
let enterpriseUsers: EnterpriseUsers;
let service: ServiceProcess | undefined;
let callbackPort: number;
const taskQueue = `durable-${Date.now()}`;

before(async () => {
  ({ env, simulator, callbackPort } = await startServiceSurroundings({ perSecond: 50, perMinute: 100_000 }));

  scratch = await createScratchDatabase(testPostgresUrl(), 'durability');
  database = await openDatabase(scratch.url);
  enterpriseUsers = new EnterpriseUsers(database);

  // Encodes as the service does: both sides share PAYLOAD_ENCRYPTION_KEYS.

  enterprise = new EnterpriseClient({
    temporal: env.client,
    taskQueue,
    store: new CredentialStore(database, Keyring.parse(CREDENTIAL_KEYS)),
    users: enterpriseUsers,
    defaults: { deadlineMs: 60_000, reminderIntervalMs: 30_000, maxPrompts: 1 },
  });
  await startService();
});

after(async () => {
  await service?.stop('SIGKILL');
  await simulator?.close();
  await database?.close();
  await scratch?.drop();
  await env?.teardown();
});

async function startService(): Promise<void> {
  service = await startServiceProcess({
    temporalAddress: env.address,
    taskQueue,
    databaseUrl: scratch.url,
    credentialKeys: CREDENTIAL_KEYS,
    simulatorUrl: simulator.url,
    callbackPort,
  });
}

async function killService(): Promise<void> {
  await service!.stop('SIGKILL');
}

async function recorded(captureId: string): Promise<number> {
  return Object.values(await enterpriseUsers.countsByState(captureId)).reduce((sum, n) => sum + n, 0);
}

const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, { intervalMs: 200 });

test('a domain survives its service being killed with SIGKILL twice: same counts, every user once', async () => {
  const emails = EMAILS;
  const serviceAccount = z.object({ service_account_id: z.string(), refresh_token: z.string() }).parse(
    await got
      .post(`${simulator.url}/_sim/enterprise/domains`, {
        json: { domain: DOMAIN, client_id: CLIENT.clientId, users: emails },
      })
      .json(),
  );
  await enterprise.start({
    domain: DOMAIN,
    requireApproval: false,
    users: [emails],
    serviceAccountRefreshToken: serviceAccount.refresh_token,
    window: 40,
    // A callback posted while the service was down is lost: the user's deadline is how it is asked again. Any
    // number of asks ends with the user's access, so the cap is only there to end a run gone wrong.
    userDeadlineMs: 4_000,
    maxUserRequests: 30,
    historyEventBudget: 100,
  });

  let authorizationUrl: string | undefined;
  await until('the administrator is asked', async () => {
    authorizationUrl = (await enterprise.get(DOMAIN)).authorizationUrl;
    return authorizationUrl !== undefined;
  });
  await followRedirect(await decideOnConsentPage(authorizationUrl!, 'free_busy_google', { domain: DOMAIN }));
  const { captureId } = await enterprise.get(DOMAIN);

  await until('a fifth of the users are done', async () => (await recorded(captureId)) >= USERS / 5);
  await killService();
  await startService();
  await until('two thirds of the users are done', async () => (await recorded(captureId)) >= (2 * USERS) / 3);
  await killService();
  await startService();

  const result = await enterprise.waitForResult(DOMAIN);
  assert.equal(result.phase, 'completed');
  assert.deepEqual(result.counts, { completed: USERS });
  const history = await env.client.workflow.getHandle(enterpriseDowngradeId(DOMAIN)).fetchHistory();
  const stored = history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  assert.equal(
    Buffer.from(stored?.metadata?.encoding ?? []).toString(),
    ENCRYPTED_ENCODING,
    "the service's worker encrypted the result",
  );

  const outcomes = await enterpriseUsers.outcomes(captureId, { limit: USERS + 1 });
  assert.deepEqual(
    outcomes.map((o) => o.email).sort(),
    [...emails].sort(),
    'every user has exactly one outcome',
  );
  assert.ok(outcomes.every((o) => o.state === 'completed' && o.credentialRef));
  const twice = await database.query(
    `SELECT label FROM credentials WHERE kind = 'account' GROUP BY label HAVING count(*) > 1`,
  );
  assert.deepEqual(twice, [], 'no user was granted and stored twice');
  assert.equal(new Set(outcomes.map((o) => o.credentialRef)).size, USERS);
});

test('every run stored by the server (parent runs and users) holds encrypted payloads and no secret or e-mail', async () => {
  await assertEveryHistoryHoldsNoSecrets({ env, simulator }, { plaintexts: EMAILS, atLeast: USERS + 1 });
});
