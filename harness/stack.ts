/**
 * The whole service, for tests: a real Temporal dev server (the official CLI), the Cronofy simulator, a scratch
 * database on the tests' PostgreSQL, the callback server and a worker — all on loopback, wired as in production.
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import assert from 'node:assert/strict';
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from './temporalServer.js';
import { DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import got from 'got';
import { decodeJwt, type JWTPayload } from 'jose';
import { z } from 'zod';
import { parseConsentFormBase } from './consentForm.js';
import { EnterpriseClient, IndividualClient } from '../src/client.js';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import { startCallbackServer } from '../src/callbacks/server.js';
import { temporalCallbackDeps } from '../src/callbacks/temporalSignals.js';
import { StateSigner } from '../src/contracts/stateToken.js';
import type { EncryptionCodec } from '../src/codec/encryptionCodec.js';
import { CronofyClient } from '../src/cronofy/client.js';
import { cronofyCallMetrics, runtimeTelemetryOptions } from '../src/observability/metrics.js';
import { tracingClientInterceptors, type Tracing } from '../src/observability/tracing.js';

import { startSimulator, type RunningSimulator } from '../simulator/server.js';
import type { CredentialStore } from '../src/store/credentialStore.js';
import { createStores } from '../src/store/stores.js';
import { createApiDeps, type ApiDeps } from '../src/api/deps.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { createScratchDatabase, testPostgresUrl } from './postgres.js';
import { WaitAbandoned, waitUntil } from './waitUntil.js';
import { Keyring } from '../src/store/encryption.js';
import { isTerminalState, type ApplicationEvent } from '../src/workflows/definitions.js';
import { operatedRunHasEnded } from '../src/workflows/endings.js';
import type { DomainEvent } from '../src/workflows/enterpriseDefinitions.js';
import type { EnterpriseUsers } from '../src/store/enterpriseUsers.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { createDowngradeWorkers } from '../src/worker.js';
import { testWorkflowBundle } from './workflowBundle.js';
import { startWebhookReceiver, testSigningSecret, type WebhookReceiver } from './webhookReceiver.js';
import { Notifications } from '../src/store/notifications.js';
import { NotificationDispatcher } from '../src/notifications/dispatcher.js';
import { WebhookSender } from '../src/notifications/webhook.js';
import { EmailSender } from '../src/notifications/email.js';

export const CLIENT = { clientId: 'test-app', clientSecret: 'test-app-secret-0123456789' };
/** A run no workflow has: for hand-made states (forged, expired, for a workflow that does not exist). */
export const NO_RUN = {
  runId: '00000000-0000-4000-8000-000000000000',
  firstRunId: '00000000-0000-4000-8000-000000000000',
} as const;
export const STATE_SECRET = 'test-state-signing-secret-0123456789abcdef';
/**
 * How long the stack's page after consent waits for the verdict. Tests wait for the verdict itself, by loading the
 * page; this only keeps a broken run from hanging them, so it is far above any real check.
 */
export const TEST_VERDICT_WAIT_MS = 30_000;
const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
/** The application's Standard Webhooks secrets, mid-rotation: the new one and the one it replaces. */
export const WEBHOOK_SIGNING_SECRETS = [testSigningSecret(0x11), testSigningSecret(0x22)];
/** The stack's delivery schedule: the default's shape, in milliseconds instead of hours. */
export const TEST_RETRY_SCHEDULE_MS = [100, 200, 400, 800, 1600];
/**
 * The tests' payload encryption key. Fixed, so that histories recorded from test runs (RECORD_HISTORIES) can be
 * decrypted when test/replay.test.ts replays them later; it protects nothing outside tests.
 */
export const TEST_PAYLOAD_ENCRYPTION_KEYS = `test1:${Buffer.alloc(32, 0x5a).toString('base64')}`;

/** The credential store's key in tests: fixed, so that another process (the CLI) can share the store. */
export const TEST_CREDENTIAL_KEYS = `test1:${Buffer.alloc(32, 0x3c).toString('base64')}`;

/** The codec and data converter every test client and worker shares, as the service's do. */
export function testPayloadEncryption(): { codec: EncryptionCodec; dataConverter: DataConverter } {
  return payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS });
}

export interface Stack {
  /** Its client (`env.client`) encodes payloads through `dataConverter`, as the service's client does. */
  env: TestWorkflowEnvironment;
  codec: EncryptionCodec;
  dataConverter: DataConverter;
  simulator: RunningSimulator;
  callbackUrl: string;
  redirectUri: string;
  store: CredentialStore;
  enterpriseUsers: EnterpriseUsers;
  database: Database;
  individual: IndividualClient;
  enterprise: EnterpriseClient;
  /** What the HTTP API's routes work with, on the stack's database and Temporal. */
  api: ApiDeps;
  cronofy: CronofyClient;
  /** The events the application's webhook accepted, in order. */
  webhookEvents: Array<(ApplicationEvent | DomainEvent) & { id: string }>;
  /** The application's webhook endpoint (`failFor`, `answer`, every answer it gave). */
  webhook: WebhookReceiver;
  /** The outbox the stack's dispatcher delivers. */
  notifications: Notifications;
  taskQueue: string;
  /**
   * A worker as the service runs it; `dataConverter` replaces the stack's (a worker after a key rotation, say), and
   * `workflowBundle` its workflow code (an earlier version's, say).
   */
  startWorker(options?: {
    dataConverter?: DataConverter;
    workflowBundle?: WorkflowBundle;
  }): Promise<RunningWorker>;
  stop(): Promise<void>;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export async function startStack(
  options: {
    extraServerArgs?: string[];
    cronofyCallsPerSecond?: number;
    serviceAccountRefreshMarginMs?: number;
    /**
     * A dev server the caller started (and stops), e.g. with the Temporal UI (`startDevServer`); without it the
     * stack starts its own, headless one.
     */
    temporalAddress?: string;
    /** Serve the Runtime's Prometheus endpoint (SDK and service metrics) on this ip:port. */
    metricsBindAddress?: string;
    /** Trace as the service does: client interceptors on the stack's client, workflow spans into `tracing`. */
    tracing?: Tracing;
    /**
     * The service's database (a PostgreSQL shared with another process, say); otherwise a scratch database of the
     * tests' PostgreSQL, dropped when the stack stops (cheaper to make than an embedded one).
     */
    databaseUrl?: string;
    /** Email people through this SMTP server (harness/mailbox.ts), as the service does with SMTP_URL. */
    smtpUrl?: string;
    /** The Temporal UI's URL (TEMPORAL_UI_URL): a domain's run and its users' runs link to each other there. */
    temporalUiUrl?: string;
  } = {},
): Promise<Stack> {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: runtimeTelemetryOptions(options.metricsBindAddress),
  });
  const clientTracing = options.tracing ? { interceptors: tracingClientInterceptors() } : {};
  const { codec, dataConverter } = testPayloadEncryption();
  const env = options.temporalAddress
    ? await TestWorkflowEnvironment.createFromExistingServer({
        address: options.temporalAddress,
        client: { dataConverter, ...clientTracing },
      })
    : await startTemporalServer({
        extraArgs: options.extraServerArgs,
        client: { dataConverter, ...clientTracing },
      });
  const workflowBundle = await testWorkflowBundle({
    tracing: options.tracing?.workflowSpanSink !== undefined,
  });
  const scratch = options.databaseUrl ? undefined : await createScratchDatabase(testPostgresUrl(), 'stack');
  const database = await openDatabase(options.databaseUrl ?? scratch!.url);
  const stores = createStores(database, Keyring.parse(TEST_CREDENTIAL_KEYS));
  const { store, enterpriseUsers } = stores;
  const stateSigner = new StateSigner(STATE_SECRET);

  const webhook = await startWebhookReceiver({
    signingSecrets: WEBHOOK_SIGNING_SECRETS,
    legacySecret: WEBHOOK_SECRET,
  });
  const notifications = new Notifications(database);
  const dispatcher = new NotificationDispatcher(notifications, {
    webhook: new WebhookSender(webhook.url, {
      secrets: WEBHOOK_SIGNING_SECRETS,
      legacySecret: WEBHOOK_SECRET,
    }),
    email: options.smtpUrl
      ? await EmailSender.create({
          smtpUrl: options.smtpUrl,
          from: 'Example Calendar <calendar@example.com>',
          branding: { appName: 'Example Calendar', supportEmail: 'help@example.com' },
        })
      : undefined,
    retryScheduleMs: TEST_RETRY_SCHEDULE_MS,
    pollIntervalMs: 50,
    logLevel: 'error',
  });
  dispatcher.start();

  // The callback server must exist before the simulator, which only redirects to registered URIs.
  const callbacks = await startCallbackServer(temporalCallbackDeps(env.client, store, stateSigner), {
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    metricMeter: Runtime.instance().metricMeter,
    verdictWaitMs: TEST_VERDICT_WAIT_MS,
  });
  const redirectUri = `${callbacks.url}${REDIRECT_PATH}`;
  const simulator = await startSimulator({ clients: [{ ...CLIENT, redirectUris: [redirectUri] }] });
  const cronofy = new CronofyClient({
    ...CLIENT,
    hosts: { api: simulator.url, app: simulator.url },
    onCall: cronofyCallMetrics(),
  });

  const taskQueue = `downgrades-${Date.now()}`;
  const startWorker = async (
    workerOptions: { dataConverter?: DataConverter; workflowBundle?: WorkflowBundle } = {},
  ): Promise<RunningWorker> => {
    const worker = await createDowngradeWorkers({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      workflowBundle: workerOptions.workflowBundle ?? workflowBundle,
      deps: {
        ...stores,
        cronofy,
        stateSigner,
        redirectUri,
        serviceAccountRefreshMarginMs: options.serviceAccountRefreshMarginMs,
        serviceAccountCallbackUrl: `${callbacks.url}${SERVICE_ACCOUNT_CALLBACK_PATH}`,
        notifications: dispatcher,
        temporalUiUrl: options.temporalUiUrl,
      },
      cronofyCallsPerSecond: options.cronofyCallsPerSecond ?? 1000,
      dataConverter: workerOptions.dataConverter ?? dataConverter,
      workflowSpanSink: options.tracing?.workflowSpanSink,
    });
    const running = worker.run();
    return {
      async stop() {
        worker.shutdown();
        await running;
      },
    };
  };

  const api = createApiDeps(
    { ...stores, database },
    {
      client: env.client,
      taskQueue,
      defaults: { deadlineMs: 60_000, reminderIntervalMs: 30_000, maxPrompts: 3 },
      temporalUiUrl: options.temporalUiUrl,
    },
    webhook.url,
  );

  return {
    env,
    codec,
    dataConverter,
    simulator,
    callbackUrl: callbacks.url,
    redirectUri,
    store,
    enterpriseUsers,
    database,
    individual: api.individual,
    enterprise: api.domains,
    api,
    cronofy,
    webhookEvents: webhook.events as unknown as Stack['webhookEvents'],
    webhook,
    notifications,
    taskQueue,
    startWorker,
    async stop() {
      await callbacks.app.close();
      await simulator.close();
      await dispatcher.stop();
      await webhook.close();
      await database.close();
      await scratch?.drop();
      await env.teardown();
    },
  };
}

const SimulatorAccount = z.object({
  sub: z.string(),
  email: z.string(),
  access_token: z.string(),
  refresh_token: z.string(),
});

/** A person with a Read/Write connection: the starting point of every downgrade. */
export async function createReadWriteUser(stack: { simulator: { url: string } }, email: string) {
  return SimulatorAccount.parse(
    await got
      .post(`${stack.simulator.url}/_sim/accounts`, { json: { email, client_id: CLIENT.clientId } })
      .json(),
  );
}

/** The same page works for the administrator's Enterprise Connect consent (with `domain`). */
export type ConsentDecision =
  | 'free_busy_google'
  | 'free_busy_microsoft'
  | 'read_write_google'
  | 'read_write_microsoft'
  | 'no_access'
  | 'deny';

/**
 * What a person does on the simulator's consent page, over HTTP: load it, submit the form with a decision and
 * an account, and return where Cronofy sends the browser back to (not yet followed).
 */
export async function decideOnConsentPage(
  authorizationUrl: string,
  decision: ConsentDecision,
  account: { email?: string; newEmail?: string; domain?: string },
) {
  // The service's own link sends the browser on to the consent page: the form's action is relative to that page.
  const consentPage = await got(authorizationUrl);
  const form = parseConsentFormBase(consentPage.body);
  if (!form.decisions.includes(decision)) throw new Error(`consent page does not offer ${decision}`);
  const body = new URLSearchParams({ ...form.hidden, decision });
  if (account.email) body.set('email', account.email);
  if (account.newEmail) body.set('new_email', account.newEmail);
  if (account.domain) body.set('domain', account.domain);
  const response = await got.post(new URL(form.action, consentPage.url), {
    body: body.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    followRedirect: false,
    throwHttpErrors: false,
  });
  if (response.statusCode !== 302 || !response.headers.location) {
    throw new Error(`consent page answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
  }
  return new URL(response.headers.location);
}

/**
 * Opens the URL Cronofy sent the browser to, as the browser would: `status`, `body` and `headers` are the callback
 * server's answer; when that is its 303, `location` is the page after consent it sends the browser on to, not loaded
 * yet (`openAnsweredPage` loads it).
 */
export async function followRedirect(location: URL | string) {
  const response = await got(location.toString(), { throwHttpErrors: false, followRedirect: false });
  const next =
    response.statusCode === 303 && response.headers.location
      ? new URL(response.headers.location, location)
      : undefined;
  return { status: response.statusCode, body: response.body, headers: response.headers, location: next };
}

/** Loads the page after consent as the browser would: it answers once it has the downgrade's verdict, or says why not. */
export async function openAnsweredPage(location: URL | string) {
  const page = await got(location.toString(), { throwHttpErrors: false, followRedirect: false });
  return { status: page.statusCode, body: page.body, headers: page.headers };
}

/**
 * Waits for a downgrade to reach a state, its consent link included when it awaits re-authorization. A run not
 * started yet (a campaign's or a domain's user the parent has still to start) is waited for like any other.
 */
export function waitForState(
  stack: Stack,
  workflowId: string,
  predicate: (state: string) => boolean,
  timeoutMs?: number,
) {
  return waitUntil(
    `${workflowId} reaches the state awaited`,
    async () => {
      const status = await stack.individual.get(workflowId);
      const waiting = status.state === 'awaiting_reauthorization';
      const reached = predicate(status.state) && (!waiting || status.authorizationUrl !== undefined);
      if (!reached && isTerminalState(status.state)) {
        throw new WaitAbandoned(`the run ended ${status.state}${status.reason ? `: ${status.reason}` : ''}`);
      }
      return reached && status;
    },
    { timeoutMs },
  );
}

/** The claims inside an authorization URL's `state` (decoded, not verified: the callback server verifies). */
export function stateClaims(authorizationUrl: string): JWTPayload {
  const state = new URL(authorizationUrl).searchParams.get('state');
  assert.ok(state, `a state in ${authorizationUrl}`);
  return decodeJwt(state);
}

export async function signalCount(stack: Pick<Stack, 'env'>, workflowId: string): Promise<number> {
  const history = await stack.env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((event) => event.workflowExecutionSignaledEventAttributes).length;
}

export async function simulatorGet<T>(
  stack: { simulator: { url: string } },
  path: string,
  schema: z.ZodType<T>,
): Promise<T> {
  return schema.parse(await got(`${stack.simulator.url}${path}`).json());
}

const Domain = z.object({ service_account_id: z.string(), refresh_token: z.string() });

/** An Enterprise Connect domain on the simulator with these users; its service account's credentials. */
export async function createDomain(stack: { simulator: { url: string } }, domain: string, emails: string[]) {
  return Domain.parse(
    await got
      .post(`${stack.simulator.url}/_sim/enterprise/domains`, {
        json: { domain, client_id: CLIENT.clientId, users: emails },
      })
      .json(),
  );
}

/** Approves the domain's pending Enterprise Connect request as its administrator; returns the consent link used. */
export async function approveAsAdministrator(stack: Stack, domain: string): Promise<string> {
  const authorizationUrl = await waitUntil(`the downgrade of ${domain} asks the administrator`, async () => {
    const status = await stack.enterprise.get(domain);
    if (operatedRunHasEnded(status.phase)) throw new WaitAbandoned(`the downgrade ended ${status.phase}`);
    return status.phase === 'awaiting_admin' && status.authorizationUrl;
  });
  const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { domain });
  assert.equal((await followRedirect(location)).status, 303);
  return authorizationUrl;
}
