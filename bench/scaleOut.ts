/**
 * Scale-out: one Enterprise domain shared by several worker processes and callback servers of the service
 * (`src/main.ts` with SERVICE_ROLES, as deployed, behind a round-robin balancer for the callbacks) on one real
 * Temporal server and one PostgreSQL, at Cronofy's own rate limits. With two or more workers, one is killed with
 * SIGKILL half-way and not started again. See bench/README.md.
 *
 *   npx tsx bench/scaleOut.ts --temporal-address 127.0.0.1:17233 [--users 5000] [--workers 1,2] [--kill-at 0.5]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { EnterpriseClient } from '../src/client.js';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import { createStores } from '../src/store/stores.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { bundleWorkflows } from '../src/worker.js';
import { cronofyTaskQueue } from '../src/workflows/definitions.js';
import {
  ENTERPRISE_ENDINGS,
  enterpriseDowngradeId,
  enterpriseUserDowngradeId,
  type EnterpriseStatus,
} from '../src/workflows/enterpriseDefinitions.js';
import { cronofyRateLimit } from '../simulator/rateLimit.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { freePorts } from '../harness/ports.js';
import {
  startAndApprove,
  createSimulatedDomain,
  describeProgress,
  liveFreeBusyUsers,
  WORKER_NODE_OPTIONS,
} from './enterpriseSupport.js';
import { startBenchPostgres } from './postgres.js';
import { startService, type BenchService } from './serviceProcess.js';
import { startSimulatorProcess } from './simulatorFork.js';
import { CLIENT, fmt, log, mapLimit, positive, sleep } from './support.js';

/** The service's default task queue: bench/temporal-server/dynamicconfig.yaml gives its Cronofy queue one partition. */
const TASK_QUEUE = 'cronofy-downgrade';
/** Every domain's name starts so: its runs' workflow ids too. */
const DOMAIN_PREFIX = 'scaleout';

const { values: args } = parseArgs({
  options: {
    'temporal-address': { type: 'string' },
    users: { type: 'string', default: '5000' },
    workers: { type: 'string', default: '1,2' },
    'kill-at': { type: 'string', default: '0.5' },
    window: { type: 'string', default: '500' },
    timeout: { type: 'string', default: '3600' },
  },
});
if (!args['temporal-address'])
  throw new Error(
    '--temporal-address: a Temporal server on PostgreSQL (bench/README.md says how to start one)',
  );
const temporalAddress = args['temporal-address'];
const users = Math.floor(positive('users', args.users));
const workerCounts = args.workers.split(',').map((n) => Math.floor(positive('workers', n.trim())));
const killAt = positive('kill-at', args['kill-at']);
const window = Math.floor(positive('window', args.window));
const timeoutMs = positive('timeout', args.timeout) * 1000;
/** What the simulator admits in the long run: the tighter of Cronofy's two windows. */
const allowedPerSecond = Math.min(cronofyRateLimit.perSecond, cronofyRateLimit.perMinute / 60);

interface RunResult {
  workers: number;
  outcome: string;
  wallS: number;
  floorS: number;
  completed: number;
  withOutcome: number;
  lost: number;
  grantedTwice: number;
  freeBusyLive: number;
  calls: number;
  answered429: number;
  killedAt?: string;
  /** Per worker process, in start order: its users' and domain's workflow tasks, and its Cronofy calls. */
  perWorker: Array<{ workflowTasks: number; cronofyCalls: number }>;
  /** Requests each callback server answered, through the balancer. */
  perCallbackServer: number[];
  ok: boolean;
}

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const scratch = mkdtempSync(join(tmpdir(), 'bench-scale-out-'));
  try {
    log('bundling workflows');
    const bundle = join(scratch, 'workflows.js');
    writeFileSync(bundle, (await bundleWorkflows({ tracing: false })).code);
    const adminUrl = startBenchPostgres().url;
    await terminateLeftovers();
    const results: RunResult[] = [];
    for (const workers of workerCounts) {
      log(`run: ${users} users, ${workers} worker(s) and ${workers} callback server(s)`);
      const result = await runOnce(workers, adminUrl, bundle, scratch);
      log(`done: ${JSON.stringify(result)}`);
      results.push(result);
    }
    printTable(results);
    return results.every((result) => result.ok) ? 0 : 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function runOnce(
  workers: number,
  adminUrl: string,
  bundle: string,
  scratch: string,
): Promise<RunResult> {
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const scratchDatabase = await createScratchDatabase(adminUrl, 'scaleout');
    cleanups.push(() => scratchDatabase.drop());
    const balancer = await startBalancer();
    cleanups.push(() => balancer.close());
    const simulator = await startSimulatorProcess(`${balancer.url}${REDIRECT_PATH}`, {
      rateLimit: cronofyRateLimit,
    });
    cleanups.push(() => simulator.stop());

    const credentialKeys = Keyring.generateSpec('scaleout1');
    const payloadKeys = Keyring.generateSpec('scaleoutpayload1');
    const serviceEnv = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      DATABASE_URL: scratchDatabase.url,
      CREDENTIAL_KEYS: credentialKeys,
      PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      CODEC_SERVER_TOKEN: randomBytes(24).toString('base64url'),
      STATE_SIGNING_SECRET: randomBytes(32).toString('base64url'),
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: simulator.url,
      CRONOFY_APP_URL: simulator.url,
      // Every process sends Cronofy the balancer's address, as every replica behind a load balancer would.
      CALLBACK_BASE_URL: balancer.url,
      WORKFLOW_BUNDLE_PATH: bundle,
    };
    const ports = await freePorts(2 * workers);
    const stamp = Date.now();
    const callbackServers: BenchService[] = [];
    for (let i = 0; i < workers; i += 1) {
      const callbackPort = ports[i]!;
      const service = await startService({
        env: {
          ...serviceEnv,
          SERVICE_ROLES: 'callbacks',
          CALLBACK_HOST: '127.0.0.1',
          CALLBACK_PORT: String(callbackPort),
          METRICS_BIND_ADDRESS: 'off',
        },
        readyUrl: `http://127.0.0.1:${callbackPort}/healthz`,
        logFile: join(scratch, `callbacks-${i}-${stamp}.log`),
      });
      cleanups.push(() => service.stop());
      callbackServers.push(service);
      balancer.backends.push(callbackPort);
    }
    const workerProcesses: BenchService[] = [];
    for (let i = 0; i < workers; i += 1) {
      const metricsPort = ports[workers + i]!;
      // Each worker's heap and allocator as docker-compose.yml sets them; Cronofy's rate at the service's default.
      const service = await startService({
        env: {
          ...serviceEnv,
          SERVICE_ROLES: 'worker',
          METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
          NODE_OPTIONS: WORKER_NODE_OPTIONS,
          MALLOC_ARENA_MAX: '2',
        },
        readyUrl: `http://127.0.0.1:${metricsPort}/metrics`,
        logFile: join(scratch, `worker-${i}-${stamp}.log`),
      });
      cleanups.push(() => service.stop());
      workerProcesses.push(service);
    }

    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const connection = await Connection.connect({ address: temporalAddress });
    cleanups.push(() => connection.close());
    const temporal = new Client({ connection, dataConverter });
    const database = await openDatabase(scratchDatabase.url);
    cleanups.push(() => database.close());
    const { store, enterpriseUsers } = createStores(database, Keyring.parse(credentialKeys));
    const enterprise = new EnterpriseClient({
      temporal,
      taskQueue: TASK_QUEUE,
      store,
      users: enterpriseUsers,
      defaults: { deadlineMs: 600_000, reminderIntervalMs: 300_000, maxPrompts: 3 },
    });

    // A domain name of its own per run: the runs share the server, where a finished run keeps its workflow id.
    const domain = `${DOMAIN_PREFIX}${users}w${workers}-${stamp}.example.org`;
    const simulated = await createSimulatedDomain(simulator.url, domain, users);
    const { emails } = simulated;
    const started = Date.now();
    const deadline = started + timeoutMs;
    await startAndApprove(enterprise, { domain, ...simulated }, { window, deadline });
    const { captureId } = await enterprise.get(domain);
    const recorded = async () =>
      Object.values(await enterpriseUsers.countsByState(captureId)).reduce((a, b) => a + b, 0);

    let killedAt: string | undefined;
    let result: EnterpriseStatus | undefined;
    let lastLog = 0;
    for (;;) {
      // A query to the domain can time out while its run is still cached by the worker just killed: the server
      // hands the run to the other worker once the dead one's sticky queue times out.
      const status = await enterprise.get(domain).catch((error: unknown) => {
        log(`status: ${String(error)}`);
        return undefined;
      });
      if (!status) {
        if (Date.now() > deadline) throw new Error(`timeout: the domain's status cannot be read`);
        await sleep(1_000);
        continue;
      }
      if ((ENTERPRISE_ENDINGS as readonly string[]).includes(status.phase)) {
        result = status;
        break;
      }
      if (Date.now() > deadline) {
        log(`TIMEOUT: ${describeProgress(status)}`);
        result = status;
        break;
      }
      if (workers > 1 && killedAt === undefined) {
        const done = await recorded();
        if (done >= users * killAt) {
          await workerProcesses[workers - 1]!.kill();
          killedAt = `${fmt((Date.now() - started) / 1000, 0)} s, ${done} users recorded`;
          log(`worker ${workers} killed with SIGKILL at ${killedAt}`);
        }
      }
      if (Date.now() - lastLog > 15_000) {
        log(`${fmt((Date.now() - started) / 1000, 0)} s: ${describeProgress(status)}`);
        lastLog = Date.now();
      }
      await sleep(500);
    }
    const wallS = (Date.now() - started) / 1000;

    // Every user once, completed, Free/Busy at Cronofy, one credential each; no call refused for its rate.
    const outcomes = await enterpriseUsers.outcomes(captureId, { limit: users + 1 });
    const withOutcome = new Set(outcomes.map((outcome) => outcome.email));
    const lost = emails.filter((email) => !withOutcome.has(email)).length;
    const twice = await database.query<{ label: string }>(
      `SELECT label FROM credentials WHERE kind = 'account' GROUP BY label HAVING count(*) > 1`,
    );
    const freeBusyLive = await liveFreeBusyUsers(simulator.url);
    const requests = z
      .array(z.object({ status: z.number() }))
      .parse(await got(`${simulator.url}/_sim/requests`).json());
    const answered429 = requests.filter((r) => r.status === 429).length;
    const calls = requests.length - answered429;
    const shares = await sharesByWorker(temporal, domain, captureId, workerProcesses);
    const completed = result.counts.completed ?? 0;
    const ok =
      result.phase === 'completed' &&
      completed === users &&
      lost === 0 &&
      twice.length === 0 &&
      freeBusyLive === users &&
      answered429 === 0 &&
      (workers === 1 || shares.every((share) => share.workflowTasks > 0 && share.cronofyCalls > 0));
    return {
      workers,
      outcome: result.phase,
      wallS,
      floorS: calls / allowedPerSecond,
      completed,
      withOutcome: withOutcome.size,
      lost,
      grantedTwice: twice.length,
      freeBusyLive,
      calls,
      answered429,
      killedAt,
      perWorker: shares,
      perCallbackServer: [...balancer.answered],
      ok,
    };
  } finally {
    for (const step of cleanups.reverse())
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

/**
 * Ends the runs an interrupted benchmark left running on the server: their users' Cronofy calls would take the
 * rate limit's share that the server enforces for the whole task queue.
 */
async function terminateLeftovers(): Promise<void> {
  const connection = await Connection.connect({ address: temporalAddress });
  try {
    const temporal = new Client({ connection });
    const query = `ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH '${enterpriseDowngradeId(DOMAIN_PREFIX)}'`;
    let ended = 0;
    for await (const execution of temporal.workflow.list({ query })) {
      await temporal.workflow
        .getHandle(execution.workflowId, execution.runId)
        .terminate('left running by an interrupted bench/scaleOut.ts')
        .catch(() => undefined);
      ended += 1;
    }
    if (ended > 0) log(`terminated ${ended} runs an interrupted benchmark left running`);
  } finally {
    await connection.close();
  }
}

/**
 * Which worker process took each workflow task and each Cronofy call, from the histories: a task's started event
 * names the poller's identity, which the SDK makes `<pid>@<host>`. Every user's run and every run of the domain.
 */
async function sharesByWorker(
  temporal: Client,
  domain: string,
  captureId: string,
  workerProcesses: BenchService[],
): Promise<RunResult['perWorker']> {
  const shares = workerProcesses.map(() => ({ workflowTasks: 0, cronofyCalls: 0 }));
  const byPid = new Map(workerProcesses.map((worker, index) => [String(worker.pid), index]));
  const cronofyQueue = cronofyTaskQueue(TASK_QUEUE);
  const count = (
    history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>,
  ) => {
    const cronofyActivities = new Set<string>();
    for (const event of history.events ?? []) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled?.taskQueue?.name === cronofyQueue) cronofyActivities.add(String(event.eventId));
      const identity =
        event.workflowTaskStartedEventAttributes?.identity ??
        event.activityTaskStartedEventAttributes?.identity;
      const index = identity ? byPid.get(identity.split('@')[0]!) : undefined;
      if (index === undefined) continue;
      if (event.workflowTaskStartedEventAttributes) shares[index]!.workflowTasks += 1;
      else if (cronofyActivities.has(String(event.activityTaskStartedEventAttributes?.scheduledEventId)))
        shares[index]!.cronofyCalls += 1;
    }
  };
  const parentId = enterpriseDowngradeId(domain);
  for await (const execution of temporal.workflow.list({ query: `WorkflowId = '${parentId}'` })) {
    count(await temporal.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory());
  }
  await mapLimit(
    Array.from({ length: users }, (_, position) => position),
    16,
    async (position) =>
      count(
        await temporal.workflow
          .getHandle(enterpriseUserDowngradeId(parentId, captureId, position))
          .fetchHistory(),
      ),
  );
  return shares;
}

/** A round-robin HTTP balancer in front of the callback servers, as a deployment's load balancer; counts answers. */
async function startBalancer() {
  const backends: number[] = [];
  const answered: number[] = [];
  let next = 0;
  const server: Server = createServer((incoming, outgoing) => {
    const index = next++ % backends.length;
    const forward = request(
      {
        host: '127.0.0.1',
        port: backends[index],
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        answered[index] = (answered[index] ?? 0) + 1;
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on('error', () => {
      outgoing.writeHead(502).end();
    });
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    backends,
    answered,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function printTable(results: RunResult[]): void {
  const share = (part: number, whole: number) => (whole ? `${fmt((100 * part) / whole, 1)} %` : '–');
  console.log(
    `\n### Scale-out: ${users} users at Cronofy's limits (${cronofyRateLimit.perSecond}/s, ${cronofyRateLimit.perMinute}/min), Temporal at ${temporalAddress}\n`,
  );
  console.log(
    '| workers + callback servers | outcome | wall s | floor s | wall/floor | completed | lost | granted twice | Free/Busy live | Cronofy calls (429) | workflow tasks by worker | Cronofy calls by worker | callback requests by server | worker killed |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const tasks = r.perWorker.reduce((sum, w) => sum + w.workflowTasks, 0);
    const cronofy = r.perWorker.reduce((sum, w) => sum + w.cronofyCalls, 0);
    const callbacks = r.perCallbackServer.reduce((sum, n) => sum + n, 0);
    const cells = [
      String(r.workers),
      r.outcome,
      fmt(r.wallS, 0),
      fmt(r.floorS, 0),
      fmt(r.wallS / r.floorS, 3),
      `${r.completed}/${users}`,
      String(r.lost),
      String(r.grantedTwice),
      String(r.freeBusyLive),
      `${r.calls} (${r.answered429})`,
      r.perWorker.map((w) => `${w.workflowTasks} (${share(w.workflowTasks, tasks)})`).join(', '),
      r.perWorker.map((w) => `${w.cronofyCalls} (${share(w.cronofyCalls, cronofy)})`).join(', '),
      r.perCallbackServer.map((n) => `${n} (${share(n, callbacks)})`).join(', '),
      r.killedAt ?? '–',
    ];
    console.log(`| ${cells.join(' | ')} |${r.ok ? '' : ' FAILED'}`);
  }
  const [one, ...more] = results;
  for (const other of one?.workers === 1 ? more : []) {
    console.log(
      `\nwall/floor, ${other.workers} workers ÷ 1 worker: ${fmt(other.wallS / other.floorS / (one!.wallS / one!.floorS), 3)}`,
    );
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
setTimeout(() => process.exit(), 5_000).unref();
