/**
 * Temporal Cloud's billable actions of an Individual downgrade (bench/actions.ts), on a real Temporal dev server
 * with the service's worker in its own process: downgrades driven to `completed` as a backend and a person drive
 * them, counted from their histories and, for what no history shows, from the clients' calls. See bench/README.md.
 *
 *   npx tsx bench/individualActions.ts [--downgrades 20] [--paths with-link,start] [--repeat 3] [--reminders 0]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { IndividualClient } from '../src/client.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { startCallbacksAndSimulator } from './callbacksAndSimulator.js';
import { temporalCallbackDeps } from '../src/callbacks/temporalSignals.js';
import { StateSigner } from '../src/contracts/stateToken.js';
import { createStores } from '../src/store/stores.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { bundleWorkflows } from '../src/worker.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { freePort } from '../harness/ports.js';
import { decideOnConsentPage, followRedirect, openAnsweredPage } from '../harness/stack.js';
import { startTemporalServer } from '../harness/temporalServer.js';
import { startWorkerProcess } from './enterpriseSupport.js';
import { startBenchPostgres } from './postgres.js';
import { CLIENT, fmt, log, mapLimit, middle, positive, sleep } from './support.js';
import {
  actionsTable,
  clientCalls,
  clientCount,
  costLine,
  countExecutions,
  describeServerActions,
  diffCounts,
  medianCount,
  serverActionCounts,
  totalActions,
  type ActionCount,
  type ClientCalls,
} from './actions.js';

const STATE_SECRET = 'bench-state-signing-secret-0123456789abcdef';
const LIFTED_LIMIT = { perSecond: 1_000_000, perMinute: 60_000_000 };
/** How long the Temporal server's counters may take to reach its metrics page. */
const METRICS_LAG_MS = 1_500;
/** The service's defaults (src/config.ts): a prompt waits 7 days, the application is reminded daily, 3 prompts. */
const PRODUCTION_DEFAULTS = {
  deadlineMs: 7 * 24 * 3_600_000,
  reminderIntervalMs: 24 * 3_600_000,
  maxPrompts: 3,
};
/** With `--reminders`: the reminder interval, so that reminders come within seconds. */
const SHORT_REMINDER_MS = 1_500;

const PATHS = {
  /** `IndividualClient.startWithLink`: the start and the link in one call (update-with-start), as the HTTP API. */
  'with-link': 'startWithLink (update-with-start), as POST /v1/downgrades',
  /** `IndividualClient.start`: the backend learns the link from the `authorization_required` webhook. */
  start: 'start, the link from the webhook',
} as const;
type PathName = keyof typeof PATHS;

const { values: args } = parseArgs({
  options: {
    downgrades: { type: 'string', default: '20' },
    paths: { type: 'string', default: 'with-link,start' },
    repeat: { type: 'string', default: '3' },
    reminders: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '4' },
    timeout: { type: 'string', default: '300' },
    'database-url': { type: 'string' },
  },
});
const options = {
  downgrades: Math.floor(positive('downgrades', args.downgrades)),
  paths: args.paths.split(',').map((p) => {
    if (!(p in PATHS)) throw new Error(`--paths: ${p} is none of ${Object.keys(PATHS).join(', ')}`);
    return p as PathName;
  }),
  repeat: Math.floor(positive('repeat', args.repeat)),
  reminders: Math.floor(Number(args.reminders)),
  concurrency: Math.floor(positive('concurrency', args.concurrency)),
  timeoutMs: positive('timeout', args.timeout) * 1000,
};
if (!Number.isInteger(options.reminders) || options.reminders < 0)
  throw new Error('--reminders must be 0 or more');

/** One phase's count: one path's downgrades, all completed, on one stack. */
interface PhaseResult {
  path: PathName;
  downgrades: number;
  completed: number;
  histories: ActionCount;
  /** The callback server's queries (the consent link, the page after consent). */
  service: ClientCalls;
  /** The callback server's status reads, by the page that made them. */
  pages: Record<string, number>;
  /** The backend's calls beyond the start: waiting for the result, reading the new credentials. */
  app: ClientCalls;
  /** The benchmark's own (the link of `start`, which a backend has from the webhook): left out. */
  bench: ClientCalls;
  server: Record<string, number>;
}

const SimulatorAccount = z.object({ sub: z.string(), email: z.string(), refresh_token: z.string() });

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const adminUrl = args['database-url'] ?? process.env.BENCH_DATABASE_URL ?? startBenchPostgres().url;
  const scratch = mkdtempSync(join(tmpdir(), 'bench-individual-actions-'));
  try {
    log('bundling workflows');
    const bundle = join(scratch, 'workflows.js');
    writeFileSync(bundle, (await bundleWorkflows()).code);
    const results: PhaseResult[] = [];
    for (let run = 1; run <= options.repeat; run += 1) {
      log(`run ${run}/${options.repeat}`);
      results.push(...(await runOnce(adminUrl, bundle)));
    }
    let failed = false;
    for (const path of options.paths) {
      const phases = results.filter((r) => r.path === path);
      failed ||= phases.some((p) => p.completed !== p.downgrades);
      printPath(path, phases);
    }
    return failed ? 1 : 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One stack: a dev server, a scratch database, the simulator, the callback server, the worker; each path in turn. */
async function runOnce(adminUrl: string, bundle: string): Promise<PhaseResult[]> {
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const payloadKeys = Keyring.generateSpec('payload1');
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const metricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
    const benchCalls = clientCalls();
    const serviceCalls = clientCalls();
    const appCalls = clientCalls();
    const queriesByPage: Record<string, number> = {};
    const env = await startTemporalServer({
      client: { dataConverter, interceptors: { workflow: [benchCalls.interceptor] } },
      extraArgs: ['--metrics-port', new URL(metricsUrl).port],
    });
    cleanups.push(() => env.teardown());
    const clientWith = (calls: ReturnType<typeof clientCalls>) =>
      new Client({
        connection: env.connection,
        dataConverter,
        interceptors: { workflow: [calls.interceptor] },
      });

    const scratchDatabase = await createScratchDatabase(adminUrl, 'bench');
    cleanups.push(() => scratchDatabase.drop());
    const database = await openDatabase(scratchDatabase.url);
    cleanups.push(() => database.close());
    const keys = Keyring.generateSpec('bench1');
    const { store } = createStores(database, Keyring.parse(keys));
    // Each of the callback server's status reads is one query: counted by the page that made it.
    const serviceDeps = temporalCallbackDeps(clientWith(serviceCalls), store, new StateSigner(STATE_SECRET));
    const { downgradeStatus, readStatus } = serviceDeps;
    serviceDeps.downgradeStatus = (target) => {
      queriesByPage['consent link'] = (queriesByPage['consent link'] ?? 0) + 1;
      return downgradeStatus(target);
    };
    serviceDeps.readStatus = (answer, deadline) => {
      queriesByPage['page after consent'] = (queriesByPage['page after consent'] ?? 0) + 1;
      return readStatus(answer, deadline);
    };
    const { callbacks, simulator, redirectUri } = await startCallbacksAndSimulator(
      serviceDeps,
      LIFTED_LIMIT,
      cleanups,
    );

    const taskQueue = `bench-${Date.now()}`;
    const worker = await startWorkerProcess({
      BENCH_DATABASE_URL: scratchDatabase.url,
      BENCH_CREDENTIAL_KEYS: keys,
      BENCH_PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      BENCH_STATE_SECRET: STATE_SECRET,
      BENCH_SIMULATOR_URL: simulator.url,
      BENCH_CLIENT_ID: CLIENT.clientId,
      BENCH_CLIENT_SECRET: CLIENT.clientSecret,
      BENCH_TEMPORAL_ADDRESS: env.address,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_WORKFLOW_BUNDLE: bundle,
      BENCH_CRONOFY_CALLS_PER_SECOND: '100000',
      BENCH_REDIRECT_URI: redirectUri,
      BENCH_SERVICE_ACCOUNT_CALLBACK_URL: `${callbacks.url}${SERVICE_ACCOUNT_CALLBACK_PATH}`,
    });
    cleanups.push(() => worker.stop());

    const defaults =
      options.reminders > 0
        ? { ...PRODUCTION_DEFAULTS, reminderIntervalMs: SHORT_REMINDER_MS }
        : PRODUCTION_DEFAULTS;
    // The backend's client, and the benchmark's (which reads what a backend has from the webhook).
    const app = new IndividualClient({ temporal: clientWith(appCalls), taskQueue, store, defaults });
    const bench = new IndividualClient({ temporal: env.client, taskQueue, store, defaults });

    const results: PhaseResult[] = [];
    let person = 0;
    for (const path of options.paths) {
      const before = {
        service: serviceCalls.snapshot(),
        app: appCalls.snapshot(),
        bench: benchCalls.snapshot(),
        pages: { ...queriesByPage },
        server: serverActionCounts(await got(metricsUrl).text()),
      };
      const deadline = Date.now() + options.timeoutMs;
      const workflowIds: string[] = [];
      const states = await mapLimit(
        Array.from({ length: options.downgrades }, () => (person += 1)),
        options.concurrency,
        async (n) => {
          const account = SimulatorAccount.parse(
            await got
              .post(`${simulator.url}/_sim/accounts`, {
                json: { email: `person${n}@example.com`, client_id: CLIENT.clientId },
              })
              .json(),
          );
          const request = { sub: account.sub, userId: `user-${n}`, refreshToken: account.refresh_token };
          let link: string;
          let workflowId: string;
          if (path === 'with-link') {
            const started = await app.startWithLink(request);
            workflowId = started.workflowId;
            link = started.link ?? started.authorizationUrl;
          } else {
            ({ workflowId } = await app.start(request));
            link = await linkOf(bench, workflowId, deadline);
          }
          workflowIds.push(workflowId);
          if (options.reminders > 0) await remindersSent(bench, workflowId, options.reminders, deadline);
          // The person opens the link they were given, chooses Free/Busy, and is shown the page after consent.
          const location = await decideOnConsentPage(link, 'free_busy_google', { email: account.email });
          const back = await followRedirect(location);
          if (back.status !== 303 || !back.location) throw new Error(`the callback answered ${back.status}`);
          const page = await openAnsweredPage(back.location);
          if (page.status !== 200) throw new Error(`the page after consent answered ${page.status}`);
          // The backend takes the result and the new credentials.
          const result = await app.waitForResult(workflowId);
          if (result.state === 'completed') await app.getNewCredentials(workflowId);
          return result.state;
        },
      );
      await sleep(METRICS_LAG_MS);
      const histories = await countExecutions(
        env.client,
        workflowIds.map((workflowId) => ({ workflowId })),
      );
      const phase: PhaseResult = {
        path,
        downgrades: options.downgrades,
        completed: states.filter((s) => s === 'completed').length,
        histories,
        service: diffCalls(serviceCalls.snapshot(), before.service),
        app: diffCalls(appCalls.snapshot(), before.app),
        bench: diffCalls(benchCalls.snapshot(), before.bench),
        pages: diffCounts(queriesByPage, before.pages),
        server: diffCounts(serverActionCounts(await got(metricsUrl).text()), before.server),
      };
      log(
        `${path}: ${phase.completed}/${phase.downgrades} completed; ${costLine(perDowngrade(phase), 'downgrade')}`,
      );
      results.push(phase);
    }
    return results;
  } finally {
    for (const step of cleanups.reverse())
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

/** The link a backend has from the `authorization_required` webhook; read here from the run's status. */
async function linkOf(client: IndividualClient, workflowId: string, deadline: number): Promise<string> {
  for (;;) {
    const status = await client.get(workflowId).catch(() => undefined);
    if (status?.state === 'awaiting_reauthorization' && status.authorizationUrl)
      return status.link ?? status.authorizationUrl;
    if (Date.now() > deadline) throw new Error(`${workflowId} never asked the person`);
    await sleep(50);
  }
}

/** With `--reminders`: waits until the run has reminded the application `count` times. */
async function remindersSent(client: IndividualClient, workflowId: string, count: number, deadline: number) {
  for (;;) {
    const status = await client.get(workflowId);
    if (status.remindersSent >= count) return;
    if (Date.now() > deadline) throw new Error(`${workflowId} sent ${status.remindersSent} reminders`);
    await sleep(200);
  }
}

function diffCalls(after: ClientCalls, before: ClientCalls): ClientCalls {
  return {
    queries: diffCounts(after.queries, before.queries),
    updates: diffCounts(after.updates, before.updates),
    updatesFailed: diffCounts(after.updatesFailed, before.updatesFailed),
  };
}

function parts(phase: PhaseResult) {
  return [
    { label: 'individualDowngrade runs', count: phase.histories, per: phase.downgrades },
    { label: 'callback server (queries)', count: clientCount(phase.service), per: phase.downgrades },
    { label: 'backend (queries)', count: clientCount(phase.app), per: phase.downgrades },
  ];
}

const perDowngrade = (phase: PhaseResult) =>
  parts(phase).reduce((sum, part) => sum + totalActions(part.count) / part.per, 0);

const describeQueries = (calls: ClientCalls) =>
  Object.entries(calls.queries)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ') || 'none';

function printPath(path: PathName, phases: PhaseResult[]): void {
  console.log(
    `\n### Individual downgrade, ${PATHS[path]}: Temporal Cloud actions per downgrade` +
      `${phases.length > 1 ? ` (median of ${phases.length} runs)` : ''}\n`,
  );
  console.log(
    `${phases[0]!.downgrades} downgrades a run, each to completed: the person opens the link, chooses Free/Busy, ` +
      `sees the page after consent; the backend waits for the result and reads the new credentials` +
      `${options.reminders ? `; the person answers after ${options.reminders} reminders` : ''}.\n`,
  );
  const labels = parts(phases[0]!).map((p) => p.label);
  const table = labels.map((label, i) => ({
    label,
    per: 1,
    count: medianCount(phases.map((phase) => parts(phase)[i]!)),
  }));
  console.log(actionsTable(table, 'downgrade'));
  const totals = phases.map(perDowngrade);
  const median = middle(totals);
  const kib = phases.map((p) => fmt(p.histories.historyBytes / p.downgrades / 1024, 1));
  console.log(
    `\nRuns: ${totals.map((t) => fmt(t, 3)).join(', ')} actions per downgrade ` +
      `(completed: ${phases.map((p) => `${p.completed}/${p.downgrades}`).join(', ')}). ${costLine(median, 'downgrade')}`,
  );
  console.log(`History (as the server stores it): ${kib.join(', ')} KiB per downgrade.`);
  console.log(
    `The callback server's queries per downgrade, by page: ${phases
      .map((p) =>
        Object.entries(p.pages)
          .map(([page, n]) => `${page} ${fmt(n / p.downgrades, 2)}`)
          .join(', '),
      )
      .join('; ')}.`,
  );
  console.log(
    `Left out: the benchmark's own queries (${phases.map((p) => describeQueries(p.bench)).join('; ')}), ` +
      'which stand in for the webhook a backend reads the link from.',
  );
  for (const [i, phase] of phases.entries()) {
    console.log(
      `Run ${i + 1}, the dev server's own \`action\` counter (a cross-check, not Cloud's bill): ` +
        describeServerActions(phase.server, phase.downgrades, 'downgrade'),
    );
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Anything the SDK's runtime still holds must not keep a finished benchmark alive.
setTimeout(() => process.exit(), 5_000).unref();
