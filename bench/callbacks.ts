/**
 * Load and abuse benchmark of the callback server, running as in production: `src/main.ts` as a callback-server
 * process and a worker process (SERVICE_ROLES, as docker-compose.yml deploys them; `--roles combined` for one), on
 * a Temporal dev server, PostgreSQL and the Cronofy simulator in processes of their own; this process only
 * prepares, sends and checks. See bench/README.md.
 *
 *   npx tsx bench/callbacks.ts [--count 1000] [--rate 500,max] [--concurrency 64] [--bad 10000]
 *                              [--latency-count 300] [--latency-rate 20] [--repeat 1] [--timeout 300]
 *                              [--phases sustained,abuse,latency] [--profile] [--service-node <node>]
 *                              [--roles split|combined] [--cronofy-calls-per-second 100000]
 *                              [--dev-server-store memory|wal]
 *                              [--temporal-address host:port --temporal-metrics-url URL [--temporal-namespace ns]]
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type NativeConnection } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { DowngradeClient } from '../src/client.js';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { StateSigner, type StatePurpose } from '../src/contracts/stateToken.js';

import { freePorts } from '../harness/ports.js';
import { waitUntilAnswering } from '../harness/serviceProcess.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { startBenchPostgres } from './postgres.js';
import { CredentialStore } from '../src/store/credentialStore.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { devServerArgs, temporalCliPath } from '../src/temporalDevServer.js';
import { reauthorizationCallback, searchAttributes } from '../src/workflows/definitions.js';
import { parseConsentFormBase } from '../harness/consentForm.js';
import type { SimulatorMessage } from './simulatorProcess.js';
import {
  cpuRows,
  cpuSnapshot,
  findPid,
  postmasterPid,
  recordCpu,
  SERVICE_PROCESSES,
  summarizeProfiles,
} from './cpu.js';
import { closedLoop, openLoop, sendOne, type Answer, type RequestSpec } from './httpLoad.js';
import {
  CLIENT,
  countBy,
  describeCounts,
  distribution,
  fmt,
  log,
  mapLimit,
  medianDistribution,
  middle,
  now,
  positive,
  runLabel,
  serverRequests,
  sleep,
  sum,
  type Distribution,
} from './support.js';

/** Each prompt waits an hour: nothing expires or reminds during a run. */
const PROMPT_MS = 3_600_000;
/** Concurrency of the preparation (simulator accounts, starts, queries, consent forms) and of history reads. */
const PREPARE_CONCURRENCY = 32;
/** How long the Temporal server's counters may take to reach its metrics page (seen: about a second). */
const METRICS_LAG_MS = 1_500;
/** Before a baseline: long enough for the preparation's last requests to have been counted. */
const METRICS_SETTLE_MS = 3_000;
/** Consent pages actually loaded per batch; see `collectConsents`. */
const CONSENT_PAGE_SAMPLE = 10;

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '500,max' },
    concurrency: { type: 'string', default: '64' },
    'max-in-flight': { type: 'string', default: '2000' },
    bad: { type: 'string', default: '10000' },
    waiting: { type: 'string', default: '50' },
    'latency-count': { type: 'string', default: '300' },
    'latency-rate': { type: 'string', default: '20' },
    repeat: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '300' },
    phases: { type: 'string', default: 'sustained,abuse,latency' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'boolean', default: false },
    'service-node': { type: 'string' },
    'database-url': { type: 'string' },
    'cronofy-calls-per-second': { type: 'string', default: '100000' },
    roles: { type: 'string', default: 'split' },
    'temporal-address': { type: 'string' },
    'temporal-metrics-url': { type: 'string' },
    'temporal-namespace': { type: 'string', default: 'default' },
    'dev-server-store': { type: 'string', default: 'memory' },
  },
});

const PHASES = ['sustained', 'abuse', 'latency'] as const;
type PhaseName = (typeof PHASES)[number];
const options = {
  count: Math.floor(positive('count', args.count)),
  rates: args.rate
    .split(',')
    .map((r) => (r.trim() === 'max' ? ('max' as const) : positive('rate', r.trim()))),
  concurrency: Math.floor(positive('concurrency', args.concurrency)),
  maxInFlight: Math.floor(positive('max-in-flight', args['max-in-flight'])),
  bad: Math.floor(positive('bad', args.bad)),
  waiting: Math.max(3, Math.floor(positive('waiting', args.waiting))),
  latencyCount: Math.floor(positive('latency-count', args['latency-count'])),
  latencyRate: positive('latency-rate', args['latency-rate']),
  repeat: Math.floor(positive('repeat', args.repeat)),
  timeoutMs: positive('timeout', args.timeout) * 1000,
  phases: new Set(
    args.phases.split(',').map((p) => {
      if (!(PHASES as readonly string[]).includes(p.trim())) throw new Error(`unknown phase ${p}`);
      return p.trim() as PhaseName;
    }),
  ),
  logLevel: args['log-level'],
  profile: args.profile,
  serviceNode: args['service-node'] ?? process.execPath,
  cronofyCallsPerSecond: positive('cronofy-calls-per-second', args['cronofy-calls-per-second']),
  /** `split`: a callback-server process and a worker process, as docker-compose.yml deploys; `combined`: one. */
  roles: z.enum(['split', 'combined']).parse(args.roles),
  /**
   * A Temporal server the benchmark does not start (the docker-compose stack's, say), and its Prometheus endpoint:
   * the server-work table and the abuse phase's count of signal RPCs read it. Both or neither.
   */
  temporal: externalTemporal(
    args['temporal-address'],
    args['temporal-metrics-url'],
    args['temporal-namespace'],
  ),
  /**
   * Where the dev server keeps its SQLite database: `memory` (the CLI's default, shared-cache in-memory), or `wal`,
   * a file in WAL mode with synchronous off, on the /dev/shm RAM disk when there is one (so, like memory, never
   * durable).
   */
  devServerStore: z.enum(['memory', 'wal']).parse(args['dev-server-store']),
};

function externalTemporal(address: string | undefined, metricsUrl: string | undefined, namespace: string) {
  if (address === undefined && metricsUrl === undefined) return undefined;
  if (address === undefined || metricsUrl === undefined) {
    throw new Error('--temporal-address and --temporal-metrics-url go together: the checks read its metrics');
  }
  return { address, metricsUrl: new URL(metricsUrl).toString(), namespace };
}

/** `--dev-server-store wal`: the dev server's database file, removed after the server has stopped. */
function devServerStoreArgs(cleanups: Array<() => Promise<unknown>>): string[] {
  if (options.devServerStore === 'memory') return [];
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-callbacks-temporal-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return [
    '--db-filename',
    join(dir, 'temporal.db'),
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=off',
  ];
}

class PhaseTimeout extends Error {
  override readonly name = 'PhaseTimeout';
}

/**
 * Runs one phase under its own time limit. On timeout it throws with what the phase had reached (its `status`),
 * and the caller tears everything down and exits 1.
 */
async function phase<T>(
  name: string,
  work: (status: { text: string }) => Promise<T>,
  timeoutMs = options.timeoutMs,
): Promise<T> {
  const status = { text: 'starting' };
  const started = Date.now();
  log(`${name}: start (limit ${timeoutMs / 1000} s)`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PhaseTimeout(
            `TIMEOUT: phase "${name}" did not finish within ${timeoutMs / 1000} s (reached: ${status.text})`,
          ),
        ),
      timeoutMs,
    );
  });
  const progress = setInterval(() => log(`${name}: ${status.text}`), 10_000);
  const running = work(status);
  // After a timeout the work may still fail while everything is torn down: that is no second error.
  running.catch(() => {});
  try {
    const result = await Promise.race([running, timeout]);
    log(`${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The stack: Temporal dev server, PostgreSQL, simulator and service, each in its own process.

interface Stack {
  client: Client;
  /** For a worker in this process (the waking yardstick), with the client's namespace and payload encryption. */
  nativeConnection: NativeConnection;
  namespace: string;
  dataConverter: DataConverter;
  downgrades: DowngradeClient;
  taskQueue: string;
  callbackBase: string;
  simulatorUrl: string;
  stateSecret: string;
  metricsUrl: string;
  /** The service's own Prometheus endpoint (`downgrade_callbacks` by endpoint, status and result). */
  serviceMetricsUrl: string;
  /** The service's log files: one, or the callback server's and the worker's. */
  serviceLogs: string[];
  profileDir: string;
  pids: Record<string, number | undefined>;
  stop(): Promise<void>;
}

async function startStack(adminUrl: string, pgDataDir: string | undefined, scratch: string): Promise<Stack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
    cleanups.length = 0;
  };
  try {
    const [metricsPort, callbackPort, serviceMetricsPort, workerMetricsPort] = await freePorts(4);
    const external = options.temporal;
    const env = external
      ? await TestWorkflowEnvironment.createFromExistingServer({
          address: external.address,
          namespace: external.namespace,
        })
      : await TestWorkflowEnvironment.createLocal({
          server: {
            executable: { type: 'existing-path', path: temporalCliPath() },
            extraArgs: [
              ...devServerArgs(),
              '--metrics-port',
              String(metricsPort),
              ...devServerStoreArgs(cleanups),
            ],
          },
        });
    cleanups.push(() => env.teardown());
    const scratchDatabase = await createScratchDatabase(adminUrl, 'benchcb');
    cleanups.push(() => scratchDatabase.drop());
    const databaseUrl = scratchDatabase.url;

    const callbackBase = `http://127.0.0.1:${callbackPort}`;
    const simulator = await startSimulatorProcess(`${callbackBase}${REDIRECT_PATH}`);
    cleanups.push(() => simulator.stop());

    const stateSecret = randomBytes(32).toString('base64url');
    const credentialKeys = Keyring.generateSpec('bench1');
    const payloadKeys = Keyring.generateSpec('benchpayload1');
    const taskQueue = `bench-callbacks-${Date.now()}`;
    const serviceEnv = {
      NODE_ENV: 'production',
      LOG_LEVEL: options.logLevel,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: external?.namespace ?? 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: databaseUrl,
      CREDENTIAL_KEYS: credentialKeys,
      PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      CODEC_SERVER_TOKEN: randomBytes(24).toString('base64url'),
      CODEC_SERVER_PORT: '0',
      STATE_SIGNING_SECRET: stateSecret,
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: simulator.url,
      CRONOFY_APP_URL: simulator.url,
      CRONOFY_CALLS_PER_SECOND: String(options.cronofyCallsPerSecond),
      CALLBACK_HOST: '127.0.0.1',
      CALLBACK_PORT: String(callbackPort),
      // Its own port: the default 9464 is shared with everything else on the machine.
      METRICS_BIND_ADDRESS: `127.0.0.1:${serviceMetricsPort}`,
    };
    const stamp = Date.now();
    const pids: Record<string, number | undefined> = {};
    const serviceLogs: string[] = [];
    const processes =
      options.roles === 'combined'
        ? [{ name: 'service', roles: 'worker,callbacks,codec', metricsPort: serviceMetricsPort }]
        : [
            { name: 'callbacks', roles: 'callbacks,codec', metricsPort: serviceMetricsPort },
            { name: 'worker', roles: 'worker', metricsPort: workerMetricsPort },
          ];
    for (const { name, roles, metricsPort } of processes) {
      const logFile = join(scratch, `${name}-${stamp}.log`);
      serviceLogs.push(logFile);
      const service = await startService(
        {
          ...serviceEnv,
          SERVICE_ROLES: roles,
          METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
        },
        roles.includes('callbacks') ? `${callbackBase}/healthz` : `http://127.0.0.1:${metricsPort}/metrics`,
        logFile,
        scratch,
      );
      cleanups.push(() => service.stop());
      pids[name] = service.pid;
    }

    // This process's client encodes payloads with the service's key, as an application's would.
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const namespace = env.namespace ?? 'default';
    const client = new Client({ connection: env.connection, namespace, dataConverter });
    const database: Database = await openDatabase(databaseUrl);
    cleanups.push(() => database.close());
    const downgrades = new DowngradeClient({
      temporal: client,
      taskQueue,
      store: new CredentialStore(database, Keyring.parse(credentialKeys)),
      defaults: { deadlineMs: PROMPT_MS, reminderIntervalMs: PROMPT_MS, maxPrompts: 1 },
    });
    return {
      client,
      nativeConnection: env.nativeConnection,
      namespace,
      dataConverter,
      downgrades,
      taskQueue,
      callbackBase,
      simulatorUrl: simulator.url,
      stateSecret,
      metricsUrl: external?.metricsUrl ?? `http://127.0.0.1:${metricsPort}/metrics`,
      serviceMetricsUrl: `http://127.0.0.1:${serviceMetricsPort}/metrics`,
      serviceLogs,
      profileDir: join(scratch, 'profiles'),
      pids: {
        // A server the benchmark did not start is not measured (it may not even be on this machine).
        'dev server': external
          ? undefined
          : findPid((cmdline) => cmdline.includes('start-dev') && cmdline.includes(String(metricsPort))),
        ...pids,
        simulator: simulator.pid,
        PostgreSQL: pgDataDir ? postmasterPid(pgDataDir) : undefined,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startSimulatorProcess(redirectUri: string) {
  const child = fork(fileURLToPath(new URL('./simulatorProcess.ts', import.meta.url)), [], {
    env: {
      ...process.env,
      BENCH_CLIENT_ID: CLIENT.clientId,
      BENCH_CLIENT_SECRET: CLIENT.clientSecret,
      BENCH_REDIRECT_URI: redirectUri,
    },
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await Promise.race([
    new Promise<string>((resolve, reject) => {
      child.on('message', (message: SimulatorMessage) =>
        message.type === 'ready' ? resolve(message.url) : reject(new Error(`simulator: ${message.message}`)),
      );
      void exited.then(() => reject(new Error('the simulator process exited before it listened')));
    }),
    sleep(60_000).then(() => {
      throw new Error('the simulator process did not start within 60 s');
    }),
  ]).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/**
 * `src/main.ts`, as deployed: its own process (with `env`'s SERVICE_ROLES), pointed at this Temporal, PostgreSQL
 * and simulator; ready once `readyUrl` answers.
 */
async function startService(env: Record<string, string>, readyUrl: string, logFile: string, scratch: string) {
  const out = openSync(logFile, 'w');
  const profileArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(scratch, 'profiles')}`] : [];
  const child: ChildProcess = spawn(options.serviceNode, [...profileArgs, '--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitUntilAnswering(child, readyUrl, { detail: () => `:\n${tail(logFile)}` });
  return {
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]))) {
        child.kill('SIGKILL');
        await exited;
      }
      if (options.profile) log(`service CPU profile(s) in ${join(scratch, 'profiles')}`);
    },
  };
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Preparation: N individual downgrades waiting for re-authorization, and a real consent redirect for each.

interface Prepared {
  workflowId: string;
  sub: string;
  email: string;
  authorizationUrl: string;
  /** Where the simulator sent the browser back: the callback server's URL with `code` and `state`. */
  callback: URL;
}

const SimulatorAccount = z.object({ sub: z.string(), email: z.string(), refresh_token: z.string() });

/** Running downgrades of one batch: those started since it began (visibility, so nothing earlier counts). */
const runningQuery = (stack: Stack, since: Date) =>
  `TaskQueue = '${stack.taskQueue}' AND ExecutionStatus = 'Running' AND StartTime >= '${since.toISOString()}'`;

async function prepare(
  stack: Stack,
  label: string,
  n: number,
  status: { text: string },
): Promise<Prepared[] & { since: Date }> {
  const steps: string[] = [];
  let stepStart = Date.now();
  const step = (name: string) => {
    steps.push(`${name} ${((Date.now() - stepStart) / 1000).toFixed(1)} s`);
    stepStart = Date.now();
  };
  const since = new Date();
  let created = 0;
  let started = 0;
  const accounts = await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    PREPARE_CONCURRENCY,
    async (i) => {
      const account = SimulatorAccount.parse(
        await got
          .post(`${stack.simulatorUrl}/_sim/accounts`, {
            json: { email: `${label}-${i}-${Date.now()}@bench.example.org`, client_id: CLIENT.clientId },
          })
          .json(),
      );
      status.text = `${label}: accounts ${++created}/${n}`;
      return account;
    },
  );
  step('accounts');
  const workflowIds = await mapLimit(accounts, PREPARE_CONCURRENCY, async (account, i) => {
    const { workflowId } = await stack.downgrades.startIndividualDowngrade({
      sub: account.sub,
      refreshToken: account.refresh_token,
      userId: `${label}-${i}`,
    });
    status.text = `${label}: started ${++started}/${n}`;
    return workflowId;
  });
  step('starts');
  for (;;) {
    const waiting = (
      await stack.client.workflow.count(
        `${runningQuery(stack, since)} AND DowngradeState = 'awaiting_reauthorization'`,
      )
    ).count;
    status.text = `${label}: ${waiting}/${n} waiting for re-authorization`;
    if (waiting >= n) break;
    await sleep(500);
  }
  step('until waiting');
  let queried = 0;
  const urls = await mapLimit(workflowIds, PREPARE_CONCURRENCY, async (workflowId) => {
    for (;;) {
      const downgrade = await stack.downgrades.getDowngrade(workflowId);
      if (downgrade.state === 'awaiting_reauthorization' && downgrade.authorizationUrl) {
        status.text = `${label}: consent links ${++queried}/${n}`;
        return downgrade.authorizationUrl;
      }
      if (downgrade.state !== 'revoking')
        throw new Error(`${workflowId} is ${downgrade.state}: ${downgrade.reason}`);
      await sleep(200);
    }
  });
  step('queries');
  const callbacks = await collectConsents(stack, accounts, urls, label, status);
  step('consents');
  log(`${label}: prepared ${n}: ${steps.join(', ')}`);
  const prepared = accounts.map((account, i) => ({
    workflowId: workflowIds[i]!,
    sub: account.sub,
    email: account.email,
    authorizationUrl: urls[i]!,
    callback: callbacks[i]!,
  }));
  return Object.assign(prepared, { since });
}

/**
 * Each person approves Free/Busy on the simulator's consent page, over HTTP; the redirect is not followed, its
 * Location (the callback URL with code and state) is kept for the load. The simulator's page lists every account
 * the application ever had, so loading it is O(accounts): the page is loaded and checked for a sample, and for
 * every downgrade the browser's form submission (the page's hidden fields are the authorization URL's parameters,
 * as the sample confirms) is posted.
 */
async function collectConsents(
  stack: Stack,
  accounts: Array<z.infer<typeof SimulatorAccount>>,
  urls: string[],
  label: string,
  status: { text: string },
): Promise<URL[]> {
  let done = 0;
  return mapLimit(urls, PREPARE_CONCURRENCY, async (authorizationUrl, i) => {
    const url = new URL(authorizationUrl);
    const fields = Object.fromEntries(url.searchParams);
    let action = '/oauth/authorize';
    if (i < CONSENT_PAGE_SAMPLE) {
      const form = parseConsentFormBase((await got(authorizationUrl)).body);
      if (!form.decisions.includes('free_busy_google'))
        throw new Error('the consent page offers no Google Free/Busy');
      if (JSON.stringify(form.hidden) !== JSON.stringify(fields)) {
        throw new Error(`the consent form's hidden fields are not the authorization URL's parameters`);
      }
      action = form.action;
    }
    const body = new URLSearchParams({ ...fields, decision: 'free_busy_google', email: accounts[i]!.email });
    const response = await got.post(new URL(action, url), {
      body: body.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      followRedirect: false,
      throwHttpErrors: false,
    });
    const location = response.headers.location;
    if (response.statusCode !== 302 || !location) {
      throw new Error(`consent page answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
    }
    const callback = new URL(location);
    if (
      callback.origin !== stack.callbackBase ||
      callback.pathname !== REDIRECT_PATH ||
      !callback.searchParams.get('code') ||
      !callback.searchParams.get('state')
    ) {
      throw new Error(`unexpected consent redirect ${callback.origin}${callback.pathname}`);
    }
    status.text = `${label}: consents ${++done}/${urls.length}`;
    return callback;
  });
}

/** The callback server's answer to a delivered redirect: 303 on to a page whose URL carries no code. */
const DELIVERED = 303;

const pathOf = (url: URL) => `${url.pathname}${url.search}`;

// ---------------------------------------------------------------------------------------------------------------
// Verification from Temporal: signals in each history, how each run ended, and when.

interface WorkflowFacts {
  signals: number;
  status: string;
  state?: string;
  signalAt?: number;
  verifiedAt?: number;
  closedAt?: number;
  /** The steps between the signal and the exchange done: the first workflow task after the signal, the exchange. */
  steps: {
    taskStartedAt?: number;
    taskCompletedAt?: number;
    exchangeScheduledAt?: number;
    exchangeStartedAt?: number;
  };
  /**
   * After the first signal: workflow tasks started; workflow tasks timed out (on the sticky queue before they
   * started, each then scheduled again on the shared queue, so they come on top of the started ones); activities
   * scheduled.
   */
  afterSignal: { workflowTasks: number; timedOut: number; activities: number };
}

async function waitUntilNoneRunning(stack: Stack, since: Date, status: { text: string }, label: string) {
  for (;;) {
    const left = (await stack.client.workflow.count(runningQuery(stack, since))).count;
    status.text = `${label}: ${left} still running`;
    if (left === 0) return;
    await sleep(1000);
  }
}

async function workflowFacts(stack: Stack, workflowIds: string[], status: { text: string }) {
  const listed = new Map<string, { status: string; state?: string }>();
  for await (const info of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` })) {
    listed.set(info.workflowId, {
      status: info.status.name,
      state: info.typedSearchAttributes.get(searchAttributes.state),
    });
  }
  let read = 0;
  const facts = await mapLimit(
    workflowIds,
    PREPARE_CONCURRENCY,
    async (workflowId): Promise<WorkflowFacts> => {
      const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
      const activityTypes = new Map<string, string>();
      const result: WorkflowFacts = {
        signals: 0,
        status: listed.get(workflowId)?.status ?? 'UNKNOWN',
        afterSignal: { workflowTasks: 0, timedOut: 0, activities: 0 },
        steps: {},
      };
      result.state = listed.get(workflowId)?.state;
      for (const event of history.events ?? []) {
        const at = tsToMs(event.eventTime);
        const signal = event.workflowExecutionSignaledEventAttributes;
        if (signal) {
          if (signal.signalName === reauthorizationCallback.name) result.signals += 1;
          result.signalAt ??= at;
        }
        if (result.signalAt !== undefined) {
          if (event.workflowTaskStartedEventAttributes) result.steps.taskStartedAt ??= at;
          if (event.workflowTaskCompletedEventAttributes && result.steps.taskStartedAt !== undefined)
            result.steps.taskCompletedAt ??= at;
          if (event.workflowTaskStartedEventAttributes) result.afterSignal.workflowTasks += 1;
          if (event.workflowTaskTimedOutEventAttributes) result.afterSignal.timedOut += 1;
          if (event.activityTaskScheduledEventAttributes) result.afterSignal.activities += 1;
        }
        const scheduled = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (scheduled) activityTypes.set(String(event.eventId), scheduled);
        if (scheduled === 'exchangeAuthorizationCode') result.steps.exchangeScheduledAt = at;
        const started = event.activityTaskStartedEventAttributes?.scheduledEventId;
        if (started != null && activityTypes.get(String(started)) === 'exchangeAuthorizationCode') {
          result.steps.exchangeStartedAt = at;
        }
        const completed = event.activityTaskCompletedEventAttributes?.scheduledEventId;
        if (completed != null && activityTypes.get(String(completed)) === 'exchangeAuthorizationCode') {
          result.verifiedAt = at;
        }
        if (event.workflowExecutionCompletedEventAttributes) result.closedAt = at;
      }
      status.text = `histories read ${++read}/${workflowIds.length}`;
      return result;
    },
  );
  return facts;
}

/** SignalWorkflowExecution requests the server's frontend has received. */
async function signalRequests(stack: Stack): Promise<number> {
  return (await serverRequests(stack.metricsUrl)).frontend.SignalWorkflowExecution ?? 0;
}

/** The service's `downgrade_callbacks` counters, by result (delivered, forged, replay, …), summed over endpoints. */
async function serviceCallbackCounts(stack: Stack): Promise<Record<string, number>> {
  const text = await got(stack.serviceMetricsUrl, { retry: { limit: 0 } }).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('downgrade_callbacks')) continue;
    const result = /result="([^"]+)"/.exec(line)?.[1];
    if (result) counts[result] = (counts[result] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

function countsDelta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    if (value - (before[key] ?? 0) > 0) delta[key] = value - (before[key] ?? 0);
  }
  return delta;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Sustained callbacks.

interface YardstickResult {
  run: number;
  /** Whether each signal woke a workflow that a worker in this process then ran (see `signalYardstick`). */
  wakes: boolean;
  signals: number;
  workflows: number;
  perS: number;
  latency: Distribution;
}

/**
 * What this Temporal server gives a plain Temporal client, on the same machine at the same moment: signals
 * (encrypted payloads of the callback's size) from this process at `--concurrency`, without HTTP, state checks or
 * PostgreSQL. Two kinds:
 * - not waking: 256 workflows on a task queue no worker polls, so each signal costs the server one history write;
 * - waking: one signal to each of as many workflows (`signalSink`, bench/trivialWorkflows.ts) as a callback batch
 *   has, with a worker in this process running them: each signal also schedules a workflow task that the server
 *   dispatches and the worker completes with no command, what every callback's signal costs at least.
 */
async function signalYardstick(stack: Stack, run: number, wakes: boolean): Promise<YardstickResult> {
  const signals = Math.min(options.count, 2000);
  const workflows = wakes ? signals : 256;
  const kind = wakes ? 'waking' : 'plain';
  const taskQueue = `${stack.taskQueue}-signal-${kind}`;
  return phase(`[yardstick] ${signals} ${kind} signals, ${options.concurrency} at a time`, async (status) => {
    const worker = wakes
      ? await Worker.create({
          connection: stack.nativeConnection,
          namespace: stack.namespace,
          taskQueue,
          workflowsPath: fileURLToPath(new URL('./trivialWorkflows.ts', import.meta.url)),
          dataConverter: stack.dataConverter,
        })
      : undefined;
    const measure = async () => {
      const ids = await mapLimit(
        Array.from({ length: workflows }, (_, i) => `bench-signal-${kind}-${run}-${i}`),
        PREPARE_CONCURRENCY,
        async (workflowId) => {
          await stack.client.workflow.start(wakes ? 'signalSink' : 'benchSignalSink', {
            workflowId,
            taskQueue,
            args: [],
          });
          return workflowId;
        },
      );
      // Each waking target's first workflow task done, so that a signal schedules a task of its own.
      if (wakes) {
        let ready = 0;
        await mapLimit(ids, PREPARE_CONCURRENCY, async (id) => {
          while ((await stack.client.workflow.getHandle(id).describe()).raw.pendingWorkflowTask)
            await sleep(50);
          status.text = `${(ready += 1)}/${ids.length} targets started`;
        });
      }
      const latencies: number[] = new Array(signals);
      let next = 0;
      const started = now();
      await Promise.all(
        Array.from({ length: options.concurrency }, async () => {
          while (next < signals) {
            const i = next++;
            const at = now();
            await stack.client.workflow.getHandle(ids[i % workflows]!).signal(reauthorizationCallback, {
              prompt: 1,
              nonce: StateSigner.newNonce(),
              codeRef: `sec_${randomBytes(18).toString('base64url')}`,
            });
            latencies[i] = now() - at;
            status.text = `signals ${i + 1}/${signals}`;
          }
        }),
      );
      const elapsedS = (now() - started) / 1000;
      await mapLimit(ids, PREPARE_CONCURRENCY, (id) =>
        stack.client.workflow.getHandle(id).terminate('benchmark: yardstick over'),
      );
      const result = {
        run,
        wakes,
        signals,
        workflows,
        perS: signals / elapsedS,
        latency: distribution(latencies),
      };
      log(`yardstick: ${JSON.stringify(result)}`);
      return result;
    };
    // runUntil stops the worker when the measurement ends, and fails the phase if the worker fails first.
    return worker ? worker.runUntil(measure) : measure();
  });
}

interface SustainedResult {
  run: number;
  mode: string;
  count: number;
  statuses: Record<string, number>;
  sendWindowS: number;
  answerWindowS: number;
  acceptedPerS: number;
  perSecondMin: number;
  perSecondMedian: number;
  latency: Distribution;
  /** From sending the callback to the signal's event time in the history (the server persisted it). */
  toSignal: Distribution;
  maxInFlight: number;
  maxLagMs: number;
  capped: number;
  completed: number;
  lost: number;
  duplicated: number;
  notCompleted: number;
  allDoneS: number;
  completedPerS: number;
  /** The dev server's persistence requests per callback: during the send, and from the send until all ended. */
  persistencePerCallbackSend: number;
  persistencePerCallback: number;
  /** Each operation's requests per callback, during the send and from the send until all ended. */
  persistenceByOperationSend: Record<string, number>;
  /** The frontend's requests per callback during the send, by operation (signals, polls, completions, …). */
  frontendByOperationSend: Record<string, number>;
  persistenceByOperation: Record<string, number>;
  /** Per downgrade, after its signal: workflow tasks started, of them timed out, activities scheduled. */
  afterSignal: { workflowTasks: number; timedOut: number; activities: number };
  ok: boolean;
}

async function sustained(
  stack: Stack,
  run: number,
  rate: number | 'max',
  used: URL[],
): Promise<SustainedResult> {
  const mode = rate === 'max' ? `max (${options.concurrency} conns)` : `${rate}/s open loop`;
  const label = rate === 'max' ? 'max' : `rate${rate}`;
  const prepared = await phase(`[${mode}] prepare ${options.count}`, (status) =>
    prepare(stack, label, options.count, status),
  );
  const base = new URL(stack.callbackBase);
  const specs = prepared.map((p): RequestSpec => ({
    category: 'legitimate',
    method: 'GET',
    path: pathOf(p.callback),
  }));
  used.push(...prepared.map((p) => p.callback));
  // The server's counters reach its metrics page a moment late: let the preparation's requests (its status
  // queries, say) arrive before the baseline, or they count as the send's.
  await sleep(METRICS_SETTLE_MS);
  const before = await serverRequests(stack.metricsUrl);
  const cpuBefore = cpuSnapshot(stack.pids);
  const sent = await phase(`[${mode}] send ${specs.length} callbacks`, (status) =>
    rate === 'max'
      ? closedLoop(base, specs, options.concurrency, status)
      : openLoop(base, specs, rate, options.maxInFlight, status),
  );
  const cpuSent = cpuSnapshot(stack.pids);
  // The same lag at the end: the send's requests reach the page up to a moment after its last answer, so the send's
  // counts also take in whatever the server did in that moment.
  await sleep(METRICS_LAG_MS);
  const sentCounts = await serverRequests(stack.metricsUrl);
  recordCpu(run, `${mode}: send`, cpuBefore, cpuSent);
  await phase(`[${mode}] wait until every downgrade ends`, (status) =>
    waitUntilNoneRunning(stack, prepared.since, status, mode),
  );
  recordCpu(run, `${mode}: until all ended`, cpuSent, cpuSnapshot(stack.pids));
  const ended = await serverRequests(stack.metricsUrl);
  const facts = await phase(`[${mode}] verify ${prepared.length} histories`, (status) =>
    workflowFacts(
      stack,
      prepared.map((p) => p.workflowId),
      status,
    ),
  );

  const answers = sent.answers;
  const firstSent = Math.min(...answers.map((a) => a.sentAt));
  const lastSent = Math.max(...answers.map((a) => a.sentAt));
  const lastAnswer = Math.max(...answers.map((a) => a.answeredAt));
  const accepted = answers.filter((a) => a.status === DELIVERED);
  const answerWindowS = (lastAnswer - firstSent) / 1000;
  // Accepted answers per whole second inside the window (the partial first and last seconds left out).
  const buckets = new Map<number, number>();
  for (const a of accepted) {
    const second = Math.floor((a.answeredAt - firstSent) / 1000);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const fullSeconds = Math.floor(answerWindowS);
  const perSecond = Array.from({ length: Math.max(0, fullSeconds - 1) }, (_, i) => buckets.get(i + 1) ?? 0);
  const delivered = answers.map((a) => a.status === DELIVERED);
  const lost = facts.filter((f, i) => delivered[i] && f.signals === 0).length;
  const duplicated = facts.filter((f) => f.signals > 1).length;
  const completed = facts.filter((f) => f.status === 'COMPLETED' && f.state === 'completed').length;
  const lastClose = Math.max(...facts.map((f) => f.closedAt ?? NaN).filter(Number.isFinite));
  const perCallback = (counts: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(counts).map(([operation, count]) => [operation, count / prepared.length]),
    );
  const errors = answers.filter((a) => a.error).map((a) => a.error!);
  if (errors.length) log(`transport errors: ${describeCounts(countBy(errors, (e) => e))}`);
  const result: SustainedResult = {
    run,
    mode,
    count: prepared.length,
    statuses: countBy(answers, (a) => String(a.status)),
    sendWindowS: (lastSent - firstSent) / 1000,
    answerWindowS,
    acceptedPerS: accepted.length / answerWindowS,
    perSecondMin: perSecond.length ? Math.min(...perSecond) : NaN,
    perSecondMedian: perSecond.length ? middle(perSecond) : NaN,
    latency: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
    toSignal: distribution(
      facts.map((f, i) => (f.signalAt ?? NaN) - answers[i]!.sentAt).filter(Number.isFinite),
    ),
    maxInFlight: sent.maxInFlight,
    maxLagMs: sent.maxLagMs,
    capped: sent.capped,
    completed,
    lost,
    duplicated,
    notCompleted: prepared.length - completed,
    allDoneS: (lastClose - firstSent) / 1000,
    completedPerS: completed / ((lastClose - firstSent) / 1000),
    persistencePerCallbackSend:
      sum(countsDelta(sentCounts.persistence, before.persistence)) / prepared.length,
    persistencePerCallback: sum(countsDelta(ended.persistence, before.persistence)) / prepared.length,
    persistenceByOperationSend: perCallback(countsDelta(sentCounts.persistence, before.persistence)),
    frontendByOperationSend: perCallback(countsDelta(sentCounts.frontend, before.frontend)),
    persistenceByOperation: perCallback(countsDelta(ended.persistence, before.persistence)),
    afterSignal: {
      workflowTasks: facts.reduce((n, f) => n + f.afterSignal.workflowTasks, 0) / facts.length,
      timedOut: facts.reduce((n, f) => n + f.afterSignal.timedOut, 0) / facts.length,
      activities: facts.reduce((n, f) => n + f.afterSignal.activities, 0) / facts.length,
    },
    ok:
      accepted.length === prepared.length && lost === 0 && duplicated === 0 && completed === prepared.length,
  };
  log(`${mode}: ${JSON.stringify(result)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Abuse: bad callbacks of every kind against both endpoints, while legitimate downgrades wait.

interface AbuseResult {
  run: number;
  count: number;
  statuses: Record<string, number>;
  byCategory: Array<{ category: string; expected: number; count: number; got: Record<string, number> }>;
  unexpected: number;
  serverErrors: number;
  answeredPerS: number;
  latency: Distribution;
  signalRequestsDuring: number;
  /** The service's own `downgrade_callbacks` counters over the abuse, by result. */
  serviceResults: Record<string, number>;
  signalsInWaitingHistories: number;
  waitingStillWaiting: string;
  health: number;
  goodCallback: string;
  ok: boolean;
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** A pseudo-random generator with a fixed seed, so every run sends the same mix in the same order. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function badRequests(
  stack: Stack,
  count: number,
  waiting: Prepared[],
  used: URL[],
  usedServiceAccountState: string,
): Promise<RequestSpec[]> {
  const signer = new StateSigner(stack.stateSecret);
  const stranger = new StateSigner(randomBytes(32).toString('base64url'));
  const random = seeded(20261125);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  // Every signed state names a downgrade that is really waiting, with a fresh nonce: if the server let one
  // through, that downgrade's history would show the signal.
  const claims = (purpose: StatePurpose) => ({
    workflowId: pick(waiting).workflowId,
    purpose,
    prompt: 1,
    nonce: StateSigner.newNonce(),
  });
  const future = () => new Date(Date.now() + PROMPT_MS);
  const real = (purpose: StatePurpose) => signer.sign(claims(purpose), future());
  const expired = (purpose: StatePurpose) => signer.sign(claims(purpose), new Date(Date.now() - 3_600_000));
  const foreign = (purpose: StatePurpose) => stranger.sign(claims(purpose), future());
  const tampered = async () => {
    const [header, payload, signature] = (await real('individual_reauthorization')).split('.');
    const claimsOf = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as object;
    const changed = { ...claimsOf, workflowId: pick(waiting).workflowId, prompt: 2 };
    return `${header}.${b64url(changed)}.${signature}`;
  };
  const algNone = () => {
    const exp = Math.floor(future().getTime() / 1000);
    return `${b64url({ alg: 'none' })}.${b64url({ ...claims('individual_reauthorization'), iss: 'cronofy-downgrade', exp })}.`;
  };
  const code = () => randomBytes(24).toString('base64url');

  type Request = Omit<RequestSpec, 'category' | 'expected'>;
  const json = { 'content-type': 'application/json' };
  const get = (query: string): Request => ({
    method: 'GET',
    path: query ? `${REDIRECT_PATH}?${query}` : REDIRECT_PATH,
  });
  const post = (
    state: string | undefined,
    body: string,
    headers: Record<string, string> = json,
  ): Request => ({
    method: 'POST',
    path:
      state === undefined
        ? SERVICE_ACCOUNT_CALLBACK_PATH
        : `${SERVICE_ACCOUNT_CALLBACK_PATH}?state=${encodeURIComponent(state)}`,
    headers,
    body,
  });
  const codeBody = (state?: string) => JSON.stringify({ authorization: { code: code(), state } });
  /** A code callback whose URL and body carry the same state. */
  const postCode = async (state: Promise<string>) => {
    const resolved = await state;
    return post(resolved, codeBody(resolved));
  };

  const kinds: Array<{
    category: string;
    expected: number;
    variants: Array<() => Request | Promise<Request>>;
  }> = [
    {
      category: 'GET malformed query',
      expected: 400,
      variants: [
        () => get(`code=${code()}&code=${code()}&state=x`),
        () => get('code=&state='),
        () => get('%ZZ=1&code=%E0%A4%A&state=%'),
        () => get(''),
        () => get('&&&==&'),
        () => get(`code=${code()}&error=access_denied&state=abc`),
      ],
    },
    {
      category: 'GET missing state',
      expected: 400,
      variants: [() => get(`code=${code()}`), () => get('error=access_denied')],
    },
    {
      category: 'GET extra parameter (valid state)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await real('individual_reauthorization')}&x=1`)],
    },
    {
      category: 'GET state not a token',
      expected: 400,
      variants: [
        () => get(`code=${code()}&state=${randomBytes(40).toString('base64url')}`),
        () => get(`code=${code()}&state=a.b.c`),
      ],
    },
    {
      category: 'GET forged (other key)',
      expected: 400,
      variants: [
        async () => get(`code=${code()}&state=${await foreign('individual_reauthorization')}`),
        async () => get(`error=access_denied&state=${await foreign('individual_reauthorization')}`),
      ],
    },
    {
      category: 'GET forged (tampered payload)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await tampered()}`)],
    },
    {
      category: 'GET forged (alg none)',
      expected: 400,
      variants: [() => get(`code=${code()}&state=${algNone()}`)],
    },
    {
      category: 'GET expired (real key)',
      expected: 410,
      variants: [async () => get(`code=${code()}&state=${await expired('individual_reauthorization')}`)],
    },
    {
      category: 'GET wrong purpose (real key)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await real('enterprise_user')}`)],
    },
    {
      category: 'GET replayed (already used)',
      expected: 409,
      variants: [() => get(pick(used).search.slice(1))],
    },
    {
      category: 'GET oversized state (> 4096)',
      expected: 400,
      variants: [() => get(`code=${code()}&state=${'A'.repeat(5000)}`)],
    },
    {
      category: 'GET oversized error_description',
      expected: 400,
      variants: [
        async () =>
          get(
            `error=access_denied&error_description=${'x'.repeat(2000)}&state=${await real('individual_reauthorization')}`,
          ),
      ],
    },
    {
      category: 'GET URL over the header limit',
      expected: 431,
      variants: [() => ({ ...get(`code=${code()}&state=${'B'.repeat(20_000)}`), ownConnection: true })],
    },
    {
      category: 'PUT on the redirect path',
      expected: 404,
      variants: [() => ({ ...get(`code=${code()}&state=x`), method: 'PUT' })],
    },
    {
      category: 'POST bad JSON',
      expected: 400,
      variants: [
        async () => post(await real('enterprise_user'), '{"authorization":{"code":'),
        async () => post(await real('enterprise_user'), ''),
        async () => post(await real('enterprise_user'), "{'authorization': nope}"),
      ],
    },
    {
      category: 'POST wrong JSON shape',
      expected: 400,
      variants: [
        async () => post(await real('enterprise_user'), JSON.stringify({ authorization: {} })),
        async () => post(await real('enterprise_user'), '[1,2,3]'),
        async () => post(await real('enterprise_user'), JSON.stringify({ authorization: { code: 7 } })),
      ],
    },
    { category: 'POST missing state', expected: 400, variants: [() => post(undefined, codeBody())] },
    {
      category: 'POST body over bodyLimit (64 KiB)',
      expected: 413,
      variants: [
        async () =>
          post(
            await real('enterprise_user'),
            JSON.stringify({ authorization: { code: code(), pad: 'p'.repeat(70_000) } }),
          ),
      ],
    },
    {
      category: 'POST unsupported content type',
      expected: 415,
      variants: [
        async () =>
          post(await real('enterprise_user'), '<authorization/>', { 'content-type': 'application/xml' }),
      ],
    },
    {
      category: 'POST forged (other key)',
      expected: 400,
      variants: [() => postCode(foreign('enterprise_user'))],
    },
    {
      category: 'POST wrong purpose (real key)',
      expected: 400,
      variants: [() => postCode(real('individual_reauthorization'))],
    },
    {
      category: 'POST expired (real key)',
      expected: 410,
      variants: [() => postCode(expired('enterprise_user'))],
    },
    {
      category: 'POST body state ≠ URL state',
      expected: 400,
      variants: [async () => post(await real('enterprise_user'), codeBody(await real('enterprise_user')))],
    },
    {
      category: 'POST oversized state (> 4096)',
      expected: 400,
      variants: [() => post('C'.repeat(5000), codeBody())],
    },
    // Cronofy resends callbacks; a duplicate is acknowledged (200) so that it stops, and sends no second signal.
    {
      category: 'POST replayed (duplicate, documented 200)',
      expected: 200,
      variants: [() => post(usedServiceAccountState, codeBody(usedServiceAccountState))],
    },
  ];
  const specs: RequestSpec[] = [];
  for (let i = 0; i < count; i += 1) {
    const kind = kinds[i % kinds.length]!;
    const variant = kind.variants[Math.floor(i / kinds.length) % kind.variants.length]!;
    specs.push({ ...(await variant()), category: kind.category, expected: kind.expected });
  }
  // Fisher-Yates with the fixed seed: both endpoints and every kind interleaved.
  for (let i = specs.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [specs[i], specs[j]] = [specs[j]!, specs[i]!];
  }
  return specs;
}

async function abuse(stack: Stack, run: number, used: URL[]): Promise<AbuseResult> {
  const waiting = await phase(`[abuse] prepare ${options.waiting} waiting downgrades`, (status) =>
    prepare(stack, 'waiting', options.waiting, status),
  );
  const base = new URL(stack.callbackBase);
  const agent = new http.Agent({ keepAlive: true });
  // Priming, before the signal count is read: one legitimate callback (its URL then replays as "already used"),
  // and one service-account callback for a user who is not waiting (410; its state then replays as a duplicate).
  const primed = waiting[0]!;
  const primeAnswer = await sendOne(
    agent,
    base,
    { category: 'prime', method: 'GET', path: pathOf(primed.callback) },
    30_000,
  );
  if (primeAnswer.status !== DELIVERED)
    throw new Error(`the priming callback answered ${primeAnswer.status}`);
  const usedServiceAccountState = await new StateSigner(stack.stateSecret).sign(
    {
      workflowId: 'downgrade-enterprise-user-bench-nobody',
      purpose: 'enterprise_user',
      prompt: 1,
      nonce: StateSigner.newNonce(),
    },
    new Date(Date.now() + PROMPT_MS),
  );
  const primePost = await sendOne(
    agent,
    base,
    {
      category: 'prime',
      method: 'POST',
      path: `${SERVICE_ACCOUNT_CALLBACK_PATH}?state=${encodeURIComponent(usedServiceAccountState)}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ authorization: { code: 'x'.repeat(32), state: usedServiceAccountState } }),
    },
    30_000,
  );
  if (primePost.status !== 410)
    throw new Error(`the priming service-account callback answered ${primePost.status}`);
  agent.destroy();
  const targets = waiting.slice(1);
  const specs = await badRequests(
    stack,
    options.bad,
    targets,
    [...used, primed.callback],
    usedServiceAccountState,
  );

  // The server's counters reach its metrics page a moment late, before the baseline and after the send alike.
  await sleep(METRICS_LAG_MS);
  const signalsBefore = await signalRequests(stack);
  const resultsBefore = await serviceCallbackCounts(stack);
  const cpuBefore = cpuSnapshot(stack.pids);
  const sent = await phase(`[abuse] send ${specs.length} bad callbacks`, (status) =>
    closedLoop(base, specs, options.concurrency, status),
  );
  recordCpu(run, 'abuse: send', cpuBefore, cpuSnapshot(stack.pids));
  await sleep(METRICS_LAG_MS);
  const signalsAfter = await signalRequests(stack);
  const serviceResults = countsDelta(await serviceCallbackCounts(stack), resultsBefore);

  return phase('[abuse] verify', async (status) => {
    const facts = await workflowFacts(
      stack,
      targets.map((t) => t.workflowId),
      status,
    );
    const health = await got(`${stack.callbackBase}/healthz`, {
      throwHttpErrors: false,
      retry: { limit: 0 },
    });
    const good = targets[0]!;
    const goodAnswer = await got(good.callback.toString(), {
      throwHttpErrors: false,
      followRedirect: false,
      retry: { limit: 0 },
    });
    const result = await Promise.race([
      stack.downgrades.waitForResult(good.workflowId),
      sleep(60_000).then(() => undefined),
    ]);
    const [goodFacts] = await workflowFacts(stack, [good.workflowId], status);
    // The rest were only there to be targeted: end them, no signal.
    await mapLimit(targets.slice(1), PREPARE_CONCURRENCY, (t) =>
      stack.client.workflow.getHandle(t.workflowId).terminate('benchmark: abuse phase over'),
    );

    const answers = sent.answers;
    const firstSent = Math.min(...answers.map((a) => a.sentAt));
    const lastAnswer = Math.max(...answers.map((a) => a.answeredAt));
    const byCategory = new Map<string, { expected: number; answers: Answer[] }>();
    specs.forEach((spec, i) => {
      const entry = byCategory.get(spec.category) ?? { expected: spec.expected!, answers: [] };
      entry.answers.push(answers[i]!);
      byCategory.set(spec.category, entry);
    });
    const unexpected = specs.filter((spec, i) => answers[i]!.status !== spec.expected).length;
    const serverErrors = answers.filter((a) => a.status >= 500 || a.status === 0).length;
    const signalsInWaiting = facts.reduce((sum, f) => sum + f.signals, 0);
    const stillWaiting = facts.filter(
      (f) => f.status === 'RUNNING' && f.state === 'awaiting_reauthorization',
    ).length;
    const goodCallback =
      goodAnswer.statusCode === DELIVERED && result?.state === 'completed' && goodFacts?.signals === 1
        ? `${DELIVERED}, completed, 1 signal`
        : `FAILED: HTTP ${goodAnswer.statusCode}, ${result?.state ?? 'no result in 60 s'}, ${goodFacts?.signals} signals`;
    const abuseResult: AbuseResult = {
      run,
      count: specs.length,
      statuses: countBy(answers, (a) => String(a.status)),
      byCategory: [...byCategory.entries()].map(([category, entry]) => ({
        category,
        expected: entry.expected,
        count: entry.answers.length,
        got: countBy(entry.answers, (a) =>
          a.error ? `${a.status} (${a.error.slice(0, 40)})` : String(a.status),
        ),
      })),
      unexpected,
      serverErrors,
      answeredPerS: specs.length / ((lastAnswer - firstSent) / 1000),
      latency: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
      signalRequestsDuring: signalsAfter - signalsBefore,
      serviceResults,
      signalsInWaitingHistories: signalsInWaiting,
      waitingStillWaiting: `${stillWaiting}/${facts.length}`,
      health: health.statusCode,
      goodCallback,
      ok:
        unexpected === 0 &&
        serverErrors === 0 &&
        signalsAfter === signalsBefore &&
        !serviceResults.delivered &&
        signalsInWaiting === 0 &&
        stillWaiting === facts.length &&
        health.statusCode === 200 &&
        goodCallback.startsWith(String(DELIVERED)),
    };
    log(`abuse: ${JSON.stringify({ ...abuseResult, byCategory: undefined })}`);
    return abuseResult;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Callback → verified latency of Individual downgrades at a modest rate.

interface LatencyResult {
  run: number;
  count: number;
  rate: number;
  statuses: Record<string, number>;
  http: Distribution;
  sendToSignal: Distribution;
  signalToVerified: Distribution;
  /** signal → verified in steps: waiting for the workflow task, the task, waiting for the exchange, the exchange. */
  steps: { toTask: Distribution; task: Distribution; toExchange: Distribution; exchange: Distribution };
  /** The bar's measure: the callback leaving the person's browser → the code exchanged and the provider known. */
  sendToVerified: Distribution;
  signalToCompleted: Distribution;
  wall: Distribution;
  completed: number;
  ok: boolean;
}

async function latency(stack: Stack, run: number): Promise<LatencyResult> {
  const prepared = await phase(`[latency] prepare ${options.latencyCount}`, (status) =>
    prepare(stack, 'latency', options.latencyCount, status),
  );
  const base = new URL(stack.callbackBase);
  const cpuBefore = cpuSnapshot(stack.pids);
  const measured = await phase(
    `[latency] ${prepared.length} callbacks at ${options.latencyRate}/s`,
    async (status) => {
      // Every wait on the result is already polling when its callback leaves.
      const results = prepared.map((p) =>
        stack.downgrades.waitForResult(p.workflowId).then((result) => ({ result, at: now() })),
      );
      const specs = prepared.map((p): RequestSpec => ({
        category: 'legitimate',
        method: 'GET',
        path: pathOf(p.callback),
      }));
      const sent = await openLoop(base, specs, options.latencyRate, options.maxInFlight, status);
      status.text = 'waiting for results';
      return { sent, results: await Promise.all(results) };
    },
  );
  recordCpu(run, 'latency: send until all results', cpuBefore, cpuSnapshot(stack.pids));
  const facts = await phase('[latency] verify histories', (status) =>
    workflowFacts(
      stack,
      prepared.map((p) => p.workflowId),
      status,
    ),
  );
  const answers = measured.sent.answers;
  const span = (from: (i: number) => number | undefined, to: (i: number) => number | undefined) =>
    prepared
      .map((_, i) => {
        const a = from(i);
        const b = to(i);
        return a === undefined || b === undefined ? NaN : b - a;
      })
      .filter(Number.isFinite);
  const completed = measured.results.filter((r) => r.result.state === 'completed').length;
  const result: LatencyResult = {
    run,
    count: prepared.length,
    rate: options.latencyRate,
    statuses: countBy(answers, (a) => String(a.status)),
    http: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
    sendToSignal: distribution(
      span(
        (i) => answers[i]!.sentAt,
        (i) => facts[i]!.signalAt,
      ),
    ),
    signalToVerified: distribution(
      span(
        (i) => facts[i]!.signalAt,
        (i) => facts[i]!.verifiedAt,
      ),
    ),
    steps: {
      toTask: distribution(
        span(
          (i) => facts[i]!.signalAt,
          (i) => facts[i]!.steps.taskStartedAt,
        ),
      ),
      task: distribution(
        span(
          (i) => facts[i]!.steps.taskStartedAt,
          (i) => facts[i]!.steps.taskCompletedAt,
        ),
      ),
      toExchange: distribution(
        span(
          (i) => facts[i]!.steps.exchangeScheduledAt,
          (i) => facts[i]!.steps.exchangeStartedAt,
        ),
      ),
      exchange: distribution(
        span(
          (i) => facts[i]!.steps.exchangeStartedAt,
          (i) => facts[i]!.verifiedAt,
        ),
      ),
    },
    sendToVerified: distribution(
      span(
        (i) => answers[i]!.sentAt,
        (i) => facts[i]!.verifiedAt,
      ),
    ),
    signalToCompleted: distribution(
      span(
        (i) => facts[i]!.signalAt,
        (i) => facts[i]!.closedAt,
      ),
    ),
    wall: distribution(
      span(
        (i) => answers[i]!.sentAt,
        (i) => measured.results[i]!.at,
      ),
    ),
    completed,
    ok:
      completed === prepared.length &&
      answers.every((a) => a.status === DELIVERED) &&
      facts.every((f) => f.signals === 1 && f.verifiedAt !== undefined),
  };
  log(`latency: ${JSON.stringify(result)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables.

function table(header: string[], rows: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

const dist = (d: Distribution) => `${fmt(d.p50)} / ${fmt(d.p90)} / ${fmt(d.p99)} / ${fmt(d.max)}`;

function printSustained(rows: SustainedResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'mode',
      'callbacks',
      'send window s',
      'answer window s',
      'accepted/s (whole window)',
      'accepted/s per second (min, median)',
      'statuses',
      'HTTP ms p50 / p90 / p99 / max',
      'send → signal in history ms p50 / p90 / p99 / max',
      'max in flight',
      'max send lag ms',
      'first send → all ended s',
      'ended completed/s',
      'completed',
      'lost',
      'duplicated',
    ],
    rows.map((r) => [
      runLabel(r.run),
      r.mode,
      String(r.count),
      fmt(r.sendWindowS, 1),
      fmt(r.answerWindowS, 1),
      fmt(r.acceptedPerS, 0),
      `${fmt(r.perSecondMin)}, ${fmt(r.perSecondMedian)}`,
      describeCounts(r.statuses),
      dist(r.latency),
      dist(r.toSignal),
      `${fmt(r.maxInFlight)}${r.capped ? ` (cap ${options.maxInFlight} reached)` : ''}`,
      fmt(r.maxLagMs),
      fmt(r.allDoneS, 1),
      fmt(r.completedPerS, 1),
      `${r.completed}/${r.count}${r.ok ? '' : ' FAILED'}`,
      String(r.lost),
      String(r.duplicated),
    ]),
  );
  console.log(
    `\n### ${title}: the Temporal server's work per callback (its persistence requests${options.temporal ? '' : ', SQLite on the dev server'})\n`,
  );
  table(
    [
      'run',
      'mode',
      'persistence requests / callback: send, until all ended',
      'most of them, per callback: during the send; until all ended',
      "the frontend's requests per callback during the send",
      'after the signal, per downgrade: workflow tasks started (and timed out before starting), activities',
    ],
    rows.map((r) => [
      runLabel(r.run),
      r.mode,
      `${fmt(r.persistencePerCallbackSend, 1)}, ${fmt(r.persistencePerCallback, 1)}`,
      `${largest(r.persistenceByOperationSend, 3)}; ${largest(r.persistenceByOperation, 6)}`,
      largest(r.frontendByOperationSend, 5),
      `${fmt(r.afterSignal.workflowTasks, 2)} (+${fmt(r.afterSignal.timedOut, 2)}), ${fmt(r.afterSignal.activities, 2)}`,
    ]),
  );
}

/** The `count` operations with the most requests per callback, largest first. */
function largest(byOperation: Record<string, number>, count: number): string {
  return Object.entries(byOperation)
    .sort(([, a], [, b]) => b - a)
    .slice(0, count)
    .map(([operation, perCallback]) => `${operation} ${fmt(perCallback, 1)}`)
    .join(', ');
}

function printYardstick(rows: YardstickResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'signals',
      'each wakes a workflow',
      'target workflows',
      'connections',
      'signals/s',
      'RPC ms p50 / p90 / p99 / max',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.signals),
      r.wakes ? 'yes' : 'no',
      String(r.workflows),
      String(options.concurrency),
      fmt(r.perS, 0),
      dist(r.latency),
    ]),
  );
}

function printAbuse(rows: AbuseResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'bad callbacks',
      'answered/s',
      'HTTP ms p50 / p90 / p99 / max',
      'statuses',
      'not as documented',
      '5xx or no answer',
      'signal RPCs during',
      "service's callback results",
      'signals in waiting histories',
      'still waiting',
      'health after',
      'good callback after',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.count),
      fmt(r.answeredPerS, 0),
      dist(r.latency),
      describeCounts(r.statuses),
      `${r.unexpected}${r.ok ? '' : ' FAILED'}`,
      String(r.serverErrors),
      String(r.signalRequestsDuring),
      describeCounts(r.serviceResults),
      String(r.signalsInWaitingHistories),
      r.waitingStillWaiting,
      String(r.health),
      r.goodCallback,
    ]),
  );
  const last = rows.at(-1);
  if (last && last.byCategory.length) {
    console.log(`\nBy kind (run ${last.run}):\n`);
    table(
      ['kind', 'sent', 'documented', 'answered'],
      [...last.byCategory]
        .sort((a, b) => a.category.localeCompare(b.category))
        .map((c) => [c.category, String(c.count), String(c.expected), describeCounts(c.got)]),
    );
  }
}

function printLatency(rows: LatencyResult[], title: string): void {
  console.log(`\n### ${title} (ms: p50 / p90 / p99 / max)\n`);
  table(
    [
      'run',
      'downgrades',
      'rate /s',
      'statuses',
      'HTTP answer',
      'send → signal recorded',
      'signal → verified (exchange done)',
      'send → verified',
      'signal → workflow completed',
      'wall: send → result returned',
      'completed',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.count),
      fmt(r.rate),
      describeCounts(r.statuses),
      dist(r.http),
      dist(r.sendToSignal),
      dist(r.signalToVerified),
      dist(r.sendToVerified),
      dist(r.signalToCompleted),
      dist(r.wall),
      `${r.completed}/${r.count}${r.ok ? '' : ' FAILED'}`,
    ]),
  );
}

function printCpu(): void {
  if (!cpuRows.length) return;
  console.log(
    '\n### CPU (cores used on average: the whole machine, shared with other work, and each process; ' +
      '"svc …" splits the service by thread; with --roles split, "cb …" the callback server and "wk …" the worker)\n',
  );
  const names = [
    'machine',
    'dev server',
    ...SERVICE_PROCESSES.flatMap(([name, prefix]) =>
      [name, ...['main', 'workflows', 'Rust core', 'other'].map((thread) => `${prefix} ${thread}`)].filter(
        (column) => cpuRows.some((row) => row.cores[column] !== undefined),
      ),
    ),
    'simulator',
    'PostgreSQL',
    'bench',
  ];
  table(
    ['run', 'phase', 'wall s', ...names],
    cpuRows.map((r) => [String(r.run), r.phase, fmt(r.wallS, 1), ...names.map((n) => fmt(r.cores[n], 2))]),
  );
}

/** Each operation's median over the runs (0 in a run that had none). */
function medianByOperation(runs: Record<string, number>[]): Record<string, number> {
  const operations = [...new Set(runs.flatMap((run) => Object.keys(run)))];
  return Object.fromEntries(
    operations.map((operation) => [operation, middle(runs.map((run) => run[operation] ?? 0))]),
  );
}

function medianSustained(rows: SustainedResult[]): SustainedResult {
  const m = (pick: (r: SustainedResult) => number) => middle(rows.map(pick));
  return {
    ...rows[0]!,
    run: 0,
    sendWindowS: m((r) => r.sendWindowS),
    answerWindowS: m((r) => r.answerWindowS),
    acceptedPerS: m((r) => r.acceptedPerS),
    perSecondMin: m((r) => r.perSecondMin),
    perSecondMedian: m((r) => r.perSecondMedian),
    latency: medianDistribution(rows.map((r) => r.latency)),
    toSignal: medianDistribution(rows.map((r) => r.toSignal)),
    maxInFlight: m((r) => r.maxInFlight),
    maxLagMs: m((r) => r.maxLagMs),
    allDoneS: m((r) => r.allDoneS),
    completedPerS: m((r) => r.completedPerS),
    persistencePerCallbackSend: m((r) => r.persistencePerCallbackSend),
    persistencePerCallback: m((r) => r.persistencePerCallback),
    persistenceByOperationSend: medianByOperation(rows.map((r) => r.persistenceByOperationSend)),
    frontendByOperationSend: medianByOperation(rows.map((r) => r.frontendByOperationSend)),
    persistenceByOperation: medianByOperation(rows.map((r) => r.persistenceByOperation)),
    afterSignal: {
      workflowTasks: m((r) => r.afterSignal.workflowTasks),
      timedOut: m((r) => r.afterSignal.timedOut),
      activities: m((r) => r.afterSignal.activities),
    },
    completed: m((r) => r.completed),
    lost: Math.max(...rows.map((r) => r.lost)),
    duplicated: Math.max(...rows.map((r) => r.duplicated)),
    statuses: sumCounts(rows.map((r) => r.statuses)),
    ok: rows.every((r) => r.ok),
  };
}

function sumCounts(items: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const item of items) for (const [k, v] of Object.entries(item)) total[k] = (total[k] ?? 0) + v;
  return total;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const external = args['database-url'] ?? process.env.BENCH_DATABASE_URL;
  const postgres = external ? { url: external, dataDir: undefined } : startBenchPostgres();
  const scratch = mkdtempSync(join(tmpdir(), 'bench-callbacks-'));
  log(
    `options: ${JSON.stringify({ ...options, phases: [...options.phases] })}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  const results: Results = { sustained: [], yardstick: [], abuse: [], latency: [], profile: [] };
  let failed = false;
  let stack: Stack | undefined;
  try {
    for (let run = 1; run <= options.repeat; run += 1) {
      log(`run ${run}/${options.repeat}: starting the stack`);
      stack = await phase(
        'start the stack',
        () => startStack(postgres.url, postgres.dataDir, scratch),
        300_000,
      );
      log(`service log(s): ${stack.serviceLogs.join(', ')}`);
      const used: URL[] = [];
      if (options.phases.has('sustained')) {
        results.yardstick.push(await signalYardstick(stack, run, false));
        results.yardstick.push(await signalYardstick(stack, run, true));
        for (const rate of options.rates) {
          const result = await sustained(stack, run, rate, used);
          results.sustained.push(result);
          failed ||= !result.ok;
        }
      }
      if (options.phases.has('abuse')) {
        // Phase 1's callbacks, all used once, are the abuse phase's replays.
        const result = await abuse(stack, run, used);
        results.abuse.push(result);
        failed ||= !result.ok;
      }
      if (options.phases.has('latency')) {
        const result = await latency(stack, run);
        results.latency.push(result);
        failed ||= !result.ok;
      }
      await stack.stop();
      for (const [name] of SERVICE_PROCESSES) {
        const pid = stack.pids[name];
        if (options.profile && pid)
          results.profile.push(...summarizeProfiles(stack.profileDir, pid, run, name));
      }
      stack = undefined;
    }
  } catch (error) {
    failed = true;
    console.error(error instanceof PhaseTimeout ? error.message : error);
    for (const logFile of stack?.serviceLogs ?? []) log(`log tail of ${logFile}:\n${tail(logFile)}`);
  } finally {
    await stack?.stop();
    printResults(results);
    if (options.profile) log(`kept ${scratch} (service CPU profiles and logs)`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  if (failed) log('FAILED: see the tables and messages above');
  return failed ? 1 : 0;
}

interface Results {
  sustained: SustainedResult[];
  yardstick: YardstickResult[];
  abuse: AbuseResult[];
  latency: LatencyResult[];
  profile: string[];
}

function printResults(results: Results) {
  const {
    sustained: sustainedRows,
    yardstick: yardstickRows,
    abuse: abuseRows,
    latency: latencyRows,
  } = results;
  if (sustainedRows.length) printSustained(sustainedRows, '1. Sustained callbacks');
  if (yardstickRows.length)
    printYardstick(yardstickRows, 'Yardstick: the same signals from a plain Temporal client (no HTTP)');
  if (abuseRows.length)
    printAbuse(abuseRows, `2. Abuse: ${options.bad} bad callbacks, ${options.concurrency} connections`);
  if (latencyRows.length) printLatency(latencyRows, '3. Callback → verified latency');
  printCpu();
  for (const line of results.profile) console.log(line);
  if (options.repeat > 1) {
    console.log(`\n## Medians of ${options.repeat} runs`);
    const modes = [...new Set(sustainedRows.map((r) => r.mode))];
    if (sustainedRows.length) {
      printSustained(
        modes.map((mode) => medianSustained(sustainedRows.filter((r) => r.mode === mode))),
        '1. Sustained callbacks (median; lost/duplicated: maximum; statuses: summed)',
      );
    }
    if (yardstickRows.length) {
      const kinds = [false, true]
        .map((wakes) => yardstickRows.filter((r) => r.wakes === wakes))
        .filter((rows) => rows.length > 0);
      printYardstick(
        kinds.map((rows) => ({
          ...rows[0]!,
          run: 0,
          perS: middle(rows.map((r) => r.perS)),
          latency: medianDistribution(rows.map((r) => r.latency)),
        })),
        'Yardstick (median)',
      );
    }
    if (abuseRows.length) {
      const m = (pick: (r: AbuseResult) => number) => middle(abuseRows.map(pick));
      printAbuse(
        [
          {
            ...abuseRows[0]!,
            run: 0,
            answeredPerS: m((r) => r.answeredPerS),
            latency: medianDistribution(abuseRows.map((r) => r.latency)),
            statuses: sumCounts(abuseRows.map((r) => r.statuses)),
            unexpected: Math.max(...abuseRows.map((r) => r.unexpected)),
            serverErrors: Math.max(...abuseRows.map((r) => r.serverErrors)),
            signalRequestsDuring: Math.max(...abuseRows.map((r) => r.signalRequestsDuring)),
            serviceResults: sumCounts(abuseRows.map((r) => r.serviceResults)),
            signalsInWaitingHistories: Math.max(...abuseRows.map((r) => r.signalsInWaitingHistories)),
            byCategory: [],
            ok: abuseRows.every((r) => r.ok),
          },
        ],
        '2. Abuse (median rate and latency; counts: maximum; statuses: summed)',
      );
    }
    if (latencyRows.length) {
      printLatency(
        [
          {
            ...latencyRows[0]!,
            run: 0,
            http: medianDistribution(latencyRows.map((r) => r.http)),
            sendToSignal: medianDistribution(latencyRows.map((r) => r.sendToSignal)),
            signalToVerified: medianDistribution(latencyRows.map((r) => r.signalToVerified)),
            sendToVerified: medianDistribution(latencyRows.map((r) => r.sendToVerified)),
            signalToCompleted: medianDistribution(latencyRows.map((r) => r.signalToCompleted)),
            wall: medianDistribution(latencyRows.map((r) => r.wall)),
            statuses: sumCounts(latencyRows.map((r) => r.statuses)),
            completed: Math.min(...latencyRows.map((r) => r.completed)),
            ok: latencyRows.every((r) => r.ok),
          },
        ],
        '3. Callback → verified latency (median of each percentile)',
      );
    }
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Anything the SDK's runtime or a timed-out phase still holds must not keep a finished benchmark alive.
setTimeout(() => process.exit(), 5_000).unref();
