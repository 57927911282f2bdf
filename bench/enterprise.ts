/**
 * Enterprise downgrade benchmark: N users against the Cronofy simulator, on a real Temporal dev server, with the
 * service's worker in its own process. See bench/README.md.
 *
 *   npx tsx bench/enterprise.ts --users 1000,10000 [--scale 10] [--window 500] [--repeat 1] [--timeout 1800]
 *   npx tsx bench/enterprise.ts --users 1000 --lifted [--trivial-count 2000] [--trivial-window 500]
 *                               [--cached-workflows 250] [--tracing]
 *   npx tsx bench/enterprise.ts --users 200 --lifted --actions all    # Temporal Cloud actions per user
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startTemporalServer } from '../harness/temporalServer.js';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import got from 'got';
import { z } from 'zod';
import { EnterpriseClient } from '../src/client.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { startCallbacksAndSimulator } from './callbacksAndSimulator.js';
import { temporalCallbackDeps } from '../src/callbacks/temporalSignals.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { startBenchPostgres } from './postgres.js';
import { StateSigner } from '../src/contracts/stateToken.js';
import { createStores } from '../src/store/stores.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { bundleWorkflows } from '../src/worker.js';
import { enterpriseDowngradeId, type EnterpriseStatus } from '../src/workflows/enterpriseDefinitions.js';
import {
  startAndApprove,
  createSimulatedDomain,
  describeProgress,
  liveFreeBusyUsers,
  startWorkerProcess,
} from './enterpriseSupport.js';
import type { trivialParent } from './trivialWorkflows.js';
import { freePort } from '../harness/ports.js';
import { CLIENT, distribution, fmt, log, positive, serverRequests, sleep } from './support.js';
import {
  type RunResult,
  median,
  perUser,
  describeCallTimeline,
  longestHistories,
  countDomainActions,
  actionsPerUser,
  describeActions,
  describeMedianActions,
} from './enterpriseReport.js';
import {
  clientCalls,
  costLine,
  dollars,
  PRICE_PER_MILLION,
  serverActionCounts,
  diffCounts,
} from './actions.js';

const STATE_SECRET = 'bench-state-signing-secret-0123456789abcdef';
/** Cronofy's documented limits per application. */
const CRONOFY_LIMIT = { perSecond: 50, perMinute: 500 };
const LIFTED_LIMIT = { perSecond: 1_000_000, perMinute: 60_000_000 };
/** The worker stays this far under the tighter of Cronofy's two limits, as a production deployment would. */
const RATE_MARGIN = 0.95;
/** How long the Temporal server's counters may take to reach its metrics page. */
const METRICS_LAG_MS = 1_500;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '1000' },
    scale: { type: 'string', default: '1' },
    window: { type: 'string', default: '500' },
    repeat: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '1800' },
    lifted: { type: 'boolean', default: false },
    'trivial-count': { type: 'string', default: '2000' },
    'trivial-window': { type: 'string' },
    'database-url': { type: 'string' },
    'cached-workflows': { type: 'string' },
    tracing: { type: 'boolean', default: false },
    actions: { type: 'string', default: '1000' },
  },
});

const options = {
  users: args.users.split(',').map((n) => Math.floor(positive('users', n.trim()))),
  scale: positive('scale', args.scale),
  window: Math.floor(positive('window', args.window)),
  repeat: Math.floor(positive('repeat', args.repeat)),
  timeoutMs: positive('timeout', args.timeout) * 1000,
  lifted: args.lifted,
  trivialCount: Math.floor(positive('trivial-count', args['trivial-count'])),
  trivialWindow: Math.floor(positive('trivial-window', args['trivial-window'] ?? args.window)),
  /** Users' runs whose histories are counted for the actions (every other run is counted whole); 0: none. */
  actionsSample:
    args.actions === 'off'
      ? 0
      : args.actions === 'all'
        ? Infinity
        : Math.floor(positive('actions', args.actions)),
};
if (options.users.some((n) => n > 100_000))
  throw new Error('the simulator holds at most 100,000 users a domain');
if (options.window >= 2000) throw new Error('--window must stay under the 2,000 pending-children limit');

const rateLimit = options.lifted
  ? LIFTED_LIMIT
  : {
      perSecond: Math.round(CRONOFY_LIMIT.perSecond * options.scale),
      perMinute: Math.round(CRONOFY_LIMIT.perMinute * options.scale),
    };
/** What the simulator admits in the long run: the tighter of its two windows. */
const allowedPerSecond = Math.min(rateLimit.perSecond, rateLimit.perMinute / 60);
const cronofyCallsPerSecond = options.lifted ? 100_000 : allowedPerSecond * RATE_MARGIN;

const MiB = 1024 * 1024;

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const benchStart = Date.now();
  const adminUrl = args['database-url'] ?? process.env.BENCH_DATABASE_URL ?? startBenchPostgres().url;
  const scratch = mkdtempSync(join(tmpdir(), 'bench-enterprise-'));
  try {
    log('bundling workflows');
    const bundles = {
      workflows: join(scratch, 'workflows.js'),
      trivial: join(scratch, 'trivial.js'),
    };
    writeFileSync(bundles.workflows, (await bundleWorkflows({ tracing: args.tracing })).code);
    writeFileSync(
      bundles.trivial,
      (
        await bundleWorkflowCode({
          workflowsPath: fileURLToPath(new URL('./trivialWorkflows.ts', import.meta.url)),
          logger: new DefaultLogger('WARN'),
        })
      ).code,
    );
    log(
      `rate limit ${rateLimit.perSecond}/s and ${rateLimit.perMinute}/min → ${fmt(allowedPerSecond, 1)} calls/s allowed; ` +
        `worker limited to ${fmt(cronofyCallsPerSecond, 1)}/s; window ${options.window}`,
    );

    const results: RunResult[] = [];
    let failed = false;
    for (const users of options.users) {
      for (let attempt = 0; attempt < options.repeat; attempt += 1) {
        log(`run: ${users} users (${attempt + 1}/${options.repeat})`);
        const result = await runOnce(users, adminUrl, bundles);
        results.push(result);
        failed ||= !result.ok;
        log(`done: ${JSON.stringify(result)}`);
      }
    }
    printTable(results, 'Runs');
    if (options.repeat > 1) {
      printTable(
        options.users.map((users) => median(results.filter((r) => r.users === users))),
        `Medians of ${options.repeat} runs`,
      );
    }
    for (const users of options.users) {
      const runs = results.filter((r) => r.users === users && r.actions);
      if (runs.length === 0) continue;
      console.log(`\n### Temporal Cloud actions per user, ${users} users\n`);
      if (runs.length === 1) console.log(describeActions(runs[0]!.actions!, users));
      else console.log(describeMedianActions(runs));
    }
    console.log(`\nTotal benchmark time: ${fmt((Date.now() - benchStart) / 1000, 0)} s`);
    return failed ? 1 : 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One benchmark run on a fresh Temporal dev server, simulator, scratch database and worker process. */
async function runOnce(
  users: number,
  adminUrl: string,
  bundles: { workflows: string; trivial: string },
): Promise<RunResult> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse())
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  };
  try {
    const payloadKeys = Keyring.generateSpec('payload1');
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const metricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
    // Queries and updates leave no history: the benchmark's own and the callback server's are counted apart.
    const benchCalls = clientCalls();
    const serviceCalls = clientCalls();
    const env = await startTemporalServer({
      client: { dataConverter, interceptors: { workflow: [benchCalls.interceptor] } },
      extraArgs: ['--metrics-port', new URL(metricsUrl).port],
    });
    cleanups.push(() => env.teardown());
    const serviceClient = new Client({
      connection: env.connection,
      dataConverter,
      interceptors: { workflow: [serviceCalls.interceptor] },
    });

    const scratchDatabase = await createScratchDatabase(adminUrl, 'bench');
    cleanups.push(() => scratchDatabase.drop());
    const databaseUrl = scratchDatabase.url;
    const database = await openDatabase(databaseUrl);
    cleanups.push(() => database.close());
    const keys = Keyring.generateSpec('bench1');
    const { store, enterpriseUsers } = createStores(database, Keyring.parse(keys));
    const stateSigner = new StateSigner(STATE_SECRET);

    const { callbacks, simulator, redirectUri } = await startCallbacksAndSimulator(
      temporalCallbackDeps(serviceClient, store, stateSigner),
      rateLimit,
      cleanups,
    );
    const sim = (path: string) => `${simulator.url}${path}`;

    const spans = args.tracing ? await startSpanSink() : undefined;
    // Runs after the worker has stopped and flushed its last spans.
    if (spans) {
      cleanups.push(async () => {
        log(`OTLP spans received from the worker: ${fmt(spans.bytes() / MiB, 1)} MiB`);
        await spans.close();
      });
    }
    const taskQueue = `bench-${Date.now()}`;
    const trivialTaskQueue = `${taskQueue}-trivial`;
    const workerEnv = {
      BENCH_DATABASE_URL: databaseUrl,
      BENCH_CREDENTIAL_KEYS: keys,
      BENCH_PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      BENCH_STATE_SECRET: STATE_SECRET,
      BENCH_SIMULATOR_URL: simulator.url,
      BENCH_CLIENT_ID: CLIENT.clientId,
      BENCH_CLIENT_SECRET: CLIENT.clientSecret,
      BENCH_TEMPORAL_ADDRESS: env.address,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_WORKFLOW_BUNDLE: bundles.workflows,
      BENCH_CRONOFY_CALLS_PER_SECOND: String(cronofyCallsPerSecond),
      ...(args['cached-workflows'] ? { BENCH_CACHED_WORKFLOWS: args['cached-workflows'] } : {}),
      BENCH_REDIRECT_URI: redirectUri,
      BENCH_SERVICE_ACCOUNT_CALLBACK_URL: `${callbacks.url}${SERVICE_ACCOUNT_CALLBACK_PATH}`,
      ...(spans ? { OTEL_EXPORTER_OTLP_ENDPOINT: spans.url } : {}),
    };

    // The yardstick first, on the same server, with its worker in a process of its own that ends before the
    // service's worker starts: the worker measured holds only what the service holds.
    let trivialPerS: number | undefined;
    if (options.lifted) {
      const trivialWorker = await startWorkerProcess({
        ...workerEnv,
        BENCH_TRIVIAL_TASK_QUEUE: trivialTaskQueue,
        BENCH_TRIVIAL_BUNDLE: bundles.trivial,
      });
      const started = Date.now();
      const completed = await env.client.workflow.execute<typeof trivialParent>('trivialParent', {
        workflowId: `${trivialTaskQueue}-parent`,
        taskQueue: trivialTaskQueue,
        args: [{ count: options.trivialCount, window: options.trivialWindow }],
        workflowExecutionTimeout: options.timeoutMs,
      });
      trivialPerS = completed / ((Date.now() - started) / 1000);
      log(
        `trivial children: ${completed} in ${fmt((Date.now() - started) / 1000, 1)} s → ${fmt(trivialPerS, 1)}/s`,
      );
      await trivialWorker.stop();
    }
    const worker = await startWorkerProcess(workerEnv);
    cleanups.push(() => worker.stop());

    const domain = `bench${users}.example.org`;
    const { emails, serviceAccount } = await createSimulatedDomain(simulator.url, domain, users);

    const enterprise = new EnterpriseClient({
      temporal: env.client,
      taskQueue,
      store,
      users: enterpriseUsers,
      defaults: { deadlineMs: 600_000, reminderIntervalMs: 300_000, maxPrompts: 3 },
    });
    const requestsBefore = await serverRequests(metricsUrl);
    const serverActionsBefore = serverActionCounts(await got(metricsUrl).text());
    const started = Date.now();
    const deadline = started + options.timeoutMs;
    await startAndApprove(
      enterprise,
      { domain, emails, serviceAccount },
      { window: options.window, deadline },
    );
    const approved = Date.now();

    const progress = setInterval(() => {
      void Promise.all([enterprise.get(domain), worker.stats(false)])
        .then(([status, stats]) =>
          log(
            `${fmt((Date.now() - started) / 1000, 0)} s: ${describeProgress(status)}, worker RSS ${fmt(stats.rss / MiB, 0)} MiB`,
          ),
        )
        .catch((error: unknown) => log(`progress: ${String(error)}`));
    }, 15_000);
    let result: EnterpriseStatus | undefined;
    try {
      result = await Promise.race([
        enterprise.waitForResult(domain),
        sleep(Math.max(0, deadline - Date.now())).then(() => undefined),
      ]);
    } finally {
      clearInterval(progress);
    }
    const finished = Date.now();
    const stats = await worker.stats(false);
    await sleep(METRICS_LAG_MS);
    const requests = perUser(await serverRequests(metricsUrl), requestsBefore, users);
    const serverActions = diffCounts(serverActionCounts(await got(metricsUrl).text()), serverActionsBefore);

    let reached: string | undefined;
    if (!result) {
      const status = await enterprise.get(domain);
      reached = describeProgress(status);
      log(`TIMEOUT after ${options.timeoutMs / 1000} s: ${reached}`);
      await env.client.workflow
        .getHandle(enterpriseDowngradeId(domain))
        .terminate('benchmark timeout')
        .catch(() => {});
      result = status;
    }

    const cronofyRequests = z
      .array(z.object({ status: z.number(), endpoint: z.string(), at: z.string() }))
      .parse(await got(sim('/_sim/requests')).json());
    const calls = cronofyRequests.filter((r) => r.status !== 429).length;
    if (!options.lifted) log(describeCallTimeline(cronofyRequests, started, approved, finished));
    const rejected429 = cronofyRequests.length - calls;
    const histories = await longestHistories(env, domain, result.captureId, users);
    const stored = await enterpriseUsers.countsByState(result.captureId);
    const freeBusyActive = await liveFreeBusyUsers(simulator.url);
    const completed = result.counts.completed ?? 0;
    const ok =
      !reached &&
      result.phase === 'completed' &&
      completed === users &&
      stored.completed === users &&
      freeBusyActive === users;
    if (!ok) {
      log(
        `CHECK FAILED: phase ${result.phase}, counts ${JSON.stringify(result.counts)}, stored ${JSON.stringify(stored)}, ` +
          `free/busy users live at the simulator ${freeBusyActive}`,
      );
    }
    const actions =
      options.actionsSample > 0
        ? await countDomainActions(env, options.actionsSample, {
            service: serviceCalls.snapshot(),
            bench: benchCalls.snapshot(),
            server: serverActions,
          })
        : undefined;
    if (actions) log(`Temporal Cloud actions: ${costLine(actionsPerUser(actions, users), 'user')}`);
    return {
      users,
      outcome: reached ? 'timeout' : result.phase,
      wallS: (finished - started) / 1000,
      usersPhaseS: (finished - approved) / 1000,
      floorS: options.lifted ? undefined : calls / allowedPerSecond,
      calls,
      callsTruncated: cronofyRequests.length >= 100_000,
      rejected429,
      runs: result.runs,
      longestParentEvents: histories.parentEvents,
      longestParentBytes: histories.parentBytes,
      longestChildEvents: histories.childEvents,
      parentTaskMs: distribution(histories.parentTaskMs),
      slowTaskWarnings: worker.slowTaskWarnings(),
      frontendPerUser: requests.frontend,
      persistencePerUser: requests.persistence,
      peakRssMiB: stats.peakRss / MiB,
      peakHeapMiB: stats.peakHeapUsed / MiB,
      endRssMiB: stats.rss / MiB,
      completed,
      ok,
      trivialPerS,
      reached,
      actions,
      actionsPerUser: actions && actionsPerUser(actions, users),
    };
  } finally {
    await cleanup();
  }
}

/** With `--tracing`: an OTLP/HTTP receiver that takes the worker's spans and counts the bytes. */
async function startSpanSink(): Promise<{ url: string; bytes(): number; close(): Promise<void> }> {
  let bytes = 0;
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (bytes += chunk.length));
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bytes: () => bytes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function printTable(rows: RunResult[], title: string): void {
  const mode = options.lifted
    ? `rate limits lifted; trivial yardstick ${options.trivialCount} children, ${options.trivialWindow} in flight`
    : `simulator ${rateLimit.perSecond}/s and ${rateLimit.perMinute}/min (scale ${options.scale}); worker limited to ${fmt(cronofyCallsPerSecond, 2)} calls/s`;
  console.log(`\n### ${title} — ${mode}; window ${options.window}\n`);
  const header = [
    'users',
    'outcome',
    'wall s',
    ...(options.lifted ? [] : ['floor s', 'wall/floor']),
    'Cronofy calls/user',
    '429s',
    'users/s',
    'ms/user',
    ...(options.lifted ? ['trivial children/s', 'users/s ÷ trivial/s'] : []),
    'parent runs',
    'longest parent history (events, KiB)',
    'longest child history (events, sample)',
    'parent task ms p50/p99/max',
    'TMPRL1104',
    'server requests/user (frontend, persistence)',
    'worker peak RSS MiB (end)',
    'worker peak heap MiB',
    ...(options.actionsSample > 0
      ? ['actions/user', `$ per 10,000 users at $${PRICE_PER_MILLION.first5M}/M`]
      : []),
    'completed',
  ];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const usersPerS = r.completed / r.usersPhaseS;
    const cells = [
      String(r.users),
      r.outcome,
      fmt(r.wallS, 1),
      ...(options.lifted ? [] : [fmt(r.floorS, 1), fmt(r.floorS && r.wallS / r.floorS, 2)]),
      `${fmt(r.calls / r.users, 3)}${r.callsTruncated ? ' (log full: ≥)' : ''}`,
      String(r.rejected429),
      fmt(usersPerS, 1),
      fmt((r.usersPhaseS * 1000) / r.users, 1),
      ...(options.lifted ? [fmt(r.trivialPerS, 1), fmt(r.trivialPerS && usersPerS / r.trivialPerS, 2)] : []),
      String(r.runs),
      `${r.longestParentEvents}, ${fmt(r.longestParentBytes / 1024, 0)}`,
      String(r.longestChildEvents),
      `${fmt(r.parentTaskMs.p50, 0)}/${fmt(r.parentTaskMs.p99, 0)}/${fmt(r.parentTaskMs.max, 0)}`,
      String(r.slowTaskWarnings),
      `${fmt(r.frontendPerUser, 1)}, ${fmt(r.persistencePerUser, 1)}`,
      `${fmt(r.peakRssMiB, 0)} (${fmt(r.endRssMiB, 0)})`,
      fmt(r.peakHeapMiB, 0),
      ...(options.actionsSample > 0
        ? [
            fmt(r.actionsPerUser, 3),
            fmt(r.actionsPerUser && dollars(r.actionsPerUser * 10_000, PRICE_PER_MILLION.first5M), 2),
          ]
        : []),
      `${r.completed}/${r.users}${r.ok ? '' : ' FAILED'}${r.reached ? ` (${r.reached})` : ''}`,
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Anything the SDK's runtime still holds must not keep a finished benchmark alive.
setTimeout(() => process.exit(), 5_000).unref();
