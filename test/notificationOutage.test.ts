/**
 * The application's webhook is down for longer than the whole retry schedule (shortened by configuration, the code
 * unchanged) while the service, a process of its own on PostgreSQL, runs 100 Individual downgrades and a domain,
 * and is killed with SIGKILL once: every downgrade ends as its people decide, and once the endpoint answers again
 * and an operator redelivers, every event arrives once, in the order it was recorded, each verified with the
 * `standardwebhooks` library.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { main, type Io } from '../src/cli.js';
import { EnterpriseClient, IndividualClient } from '../src/client.js';
import got from 'got';
import { generateApiKey } from '../src/contracts/apiKeyFormat.js';
import type { RunningSimulator } from '../simulator/server.js';
import { CredentialStore } from '../src/store/credentialStore.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { Notifications } from '../src/store/notifications.js';
import { EnterpriseUsers } from '../src/store/enterpriseUsers.js';
import { enterpriseDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import { individualDowngradeId } from '../src/workflows/definitions.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import { freePort } from '../harness/ports.js';
import { waitUntil } from '../harness/waitUntil.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import { createDomain, createReadWriteUser, decideOnConsentPage, followRedirect } from '../harness/stack.js';
import { startWebhookReceiver, testSigningSecret, type WebhookReceiver } from '../harness/webhookReceiver.js';

const PEOPLE = 100;
const DOMAIN = 'outage.example.org';
const CREDENTIAL_KEYS = Keyring.generateSpec('outage1');
const SIGNING_SECRETS = [testSigningSecret(0x31), testSigningSecret(0x32)];
const LEGACY_SECRET = 'outage-legacy-secret-0123456789';
/** The key the service registers at start (API_ADMIN_KEY), which the operators' CLI uses. */
const ADMIN_KEY = generateApiKey();

let env: TestWorkflowEnvironment;
let simulator: RunningSimulator;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let database: Database;
let outbox: Notifications;
let individual: IndividualClient;
let enterprise: EnterpriseClient;
let receiver: WebhookReceiver;
let service: ServiceProcess | undefined;
let callbackPort: number;
let metricsPort: number;
let apiPort: number;
const taskQueue = `outage-${Date.now()}`;

before(async () => {
  ({ env, simulator, callbackPort } = await startServiceSurroundings({ perSecond: 50, perMinute: 100_000 }));
  metricsPort = await freePort();
  apiPort = await freePort();
  scratch = await createScratchDatabase(testPostgresUrl(), 'outage');
  database = await openDatabase(scratch.url);
  outbox = new Notifications(database);
  receiver = await startWebhookReceiver({ signingSecrets: SIGNING_SECRETS, legacySecret: LEGACY_SECRET });
  receiver.answer(503);
  const clientOptions = {
    temporal: env.client,
    taskQueue,
    store: new CredentialStore(database, Keyring.parse(CREDENTIAL_KEYS)),
    defaults: { deadlineMs: 600_000, reminderIntervalMs: 600_000, maxPrompts: 1 },
  };
  individual = new IndividualClient(clientOptions);
  enterprise = new EnterpriseClient({ ...clientOptions, users: new EnterpriseUsers(database) });
  await startService();
});

after(async () => {
  await service?.stop('SIGKILL');
  await receiver?.close();
  await simulator?.close();
  await database?.close();
  await scratch?.drop();
  await env?.teardown();
});

const serviceEnv = () => ({
  APP_WEBHOOK_URL: receiver.url,
  APP_WEBHOOK_SIGNING_SECRETS: SIGNING_SECRETS.join(' '),
  APP_WEBHOOK_SECRET: LEGACY_SECRET,
  // Short, but long enough that the kill below finds events in the middle of their schedule.
  NOTIFICATION_RETRY_SCHEDULE: '200ms,400ms,5s',
});

async function startService(): Promise<void> {
  service = await startServiceProcess({
    temporalAddress: env.address,
    taskQueue,
    databaseUrl: scratch.url,
    credentialKeys: CREDENTIAL_KEYS,
    simulatorUrl: simulator.url,
    callbackPort,
    env: {
      ...serviceEnv(),
      METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
      API_PORT: String(apiPort),
      API_ADMIN_KEY: ADMIN_KEY,
    },
  });
}

/** One of the service's metrics, summed over its labels. */
async function metric(name: string): Promise<number> {
  const text = await got(`http://127.0.0.1:${metricsPort}/metrics`).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, { intervalMs: 200 });

/** The operators' CLI, in this process, against the service's API with its admin key. */
async function cli(...argv: string[]): Promise<string> {
  let out = '';
  const io: Io = {
    env: {
      CRONOFY_DOWNGRADE_API_URL: `http://127.0.0.1:${apiPort}`,
      CRONOFY_DOWNGRADE_API_KEY: ADMIN_KEY,
    },
    out: (text) => {
      out += text;
    },
    err: (text) => {
      out += text;
    },
  };
  assert.equal(await main(['node', 'cronofy-downgrade', ...argv], io), 0, out);
  return out;
}

/** Each person consents to Free/Busy through the simulator's page, a few at a time. */
async function consent(people: Array<{ email: string; authorizationUrl: string }>): Promise<void> {
  for (let i = 0; i < people.length; i += 10) {
    await Promise.all(
      people.slice(i, i + 10).map(async ({ email, authorizationUrl }) => {
        const page = await followRedirect(
          await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email }),
        );
        assert.equal(page.status, 303);
      }),
    );
  }
}

test('a webhook down past its whole schedule, and a SIGKILL: every downgrade ends as decided, every event arrives once and in order after redelivery', async () => {
  const people = [];
  for (let i = 0; i < PEOPLE; i += 1) {
    const account = await createReadWriteUser({ simulator }, `person${i}@outage.example.com`);
    const { authorizationUrl } = await individual.startWithLink({
      sub: account.sub,
      refreshToken: account.refresh_token,
    });
    people.push({ sub: account.sub, email: account.email, authorizationUrl });
  }
  const users = ['a', 'b', 'c'].map((name) => `${name}@${DOMAIN}`);
  const serviceAccount = await createDomain({ simulator }, DOMAIN, users);
  await enterprise.start({
    domain: DOMAIN,
    requireApproval: false,
    users: [users],
    serviceAccountRefreshToken: serviceAccount.refresh_token,
  });
  let adminUrl: string | undefined;
  await until('the administrator is asked', async () => {
    adminUrl = (await enterprise.get(DOMAIN)).authorizationUrl;
    return adminUrl !== undefined;
  });

  await consent(people.slice(0, PEOPLE / 2));
  // The kill comes once their downgrades have ended: a worker killed between Cronofy's answer to a code exchange
  // and its record loses that single-use code, which is not what this test is about.
  for (const person of people.slice(0, PEOPLE / 2)) {
    await individual.waitForResult(individualDowngradeId(person.sub));
  }
  await until(
    'failed attempts are counted',
    async () => (await metric('downgrade_notification_failures')) > 0,
  );
  await service!.stop('SIGKILL');
  await startService();
  await consent(people.slice(PEOPLE / 2));
  await followRedirect(await decideOnConsentPage(adminUrl!, 'free_busy_google', { domain: DOMAIN }));

  for (const person of people) {
    const result = await individual.waitForResult(individualDowngradeId(person.sub));
    assert.equal(result.state, 'completed', `${person.sub}: ${result.reason ?? ''}`);
  }
  assert.equal((await enterprise.waitForResult(DOMAIN)).phase, 'completed');

  // Every stream's head failed its whole schedule; what it holds waits behind it. Nothing was accepted.
  await until('every undelivered event has run its schedule', async () => {
    const pending = await outbox.list({ status: 'pending' });
    const failed = await outbox.list({ status: 'failed' });
    return failed.length === PEOPLE + 1 && pending.every((event) => event.attempts === 0);
  });
  assert.equal(receiver.events.length, 0);
  await until('the age of the oldest undelivered event is reported', async () => {
    return (await metric('downgrade_notification_oldest_undelivered_seconds')) > 0;
  });
  assert.match(await cli('webhooks', 'list', '--failed'), /authorization_required/);

  receiver.answer(204);
  assert.match(await cli('webhooks', 'redeliver'), new RegExp(`^${PEOPLE + 1} failed events`));
  await until(
    'every event is delivered',
    async () => (await outbox.list({ status: 'pending' })).length === 0,
  );
  assert.equal((await outbox.list({ status: 'failed' })).length, 0);

  const recorded = await outbox.list();
  assert.equal(
    recorded.length,
    2 * PEOPLE + 1,
    'two events per person (link, ending) and the administrator’s link',
  );
  const ids = receiver.events.map((event) => event.id);
  assert.equal(new Set(ids).size, ids.length, 'no event arrived twice');
  assert.deepEqual([...ids].sort(), recorded.map((event) => event.eventId).sort(), 'no event was lost');
  for (const person of people) {
    const workflowId = individualDowngradeId(person.sub);
    assert.deepEqual(
      receiver.events.filter((event) => event.status.workflowId === workflowId).map((event) => event.type),
      ['authorization_required', 'finished'],
      workflowId,
    );
  }
  const stream = enterpriseDowngradeId(DOMAIN);
  assert.deepEqual(
    recorded.filter((event) => event.stream === stream).map((event) => event.eventType),
    ['authorization_required'],
  );
  assert.equal(receiver.refused, 0, 'every event verified with each secret of the rotation');

  // Counted since the restart: at least the redelivered events (the failures were counted before the kill).
  assert.ok((await metric('downgrade_notification_attempts')) >= 2 * PEOPLE + 1);
  await until('the oldest undelivered event is reported as none', async () => {
    return (await metric('downgrade_notification_oldest_undelivered_seconds')) === 0;
  });
});
