/**
 * Chaos scenario for an Enterprise domain: N users on a file-backed Temporal dev server while the Cronofy simulator
 * fails a share of every API call (5xx, 429 with Retry-After, slow answers), the service's worker is killed with
 * SIGKILL twice and the Temporal server is stopped and started again on the same database file. Then every user
 * must have exactly one outcome, completed, a live Free/Busy account at the simulator and one stored credential.
 * See bench/README.md.
 *
 *   npx tsx bench/chaos.ts [--users 5000] [--window 500] [--timeout 3600]
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { startCallbacksAndSimulator } from './callbacksAndSimulator.js';
import { temporalCallbackDeps } from '../src/callbacks/temporalSignals.js';
import { StateSigner } from '../src/contracts/stateToken.js';
import { EnterpriseClient } from '../src/client.js';

import { createStores } from '../src/store/stores.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { startDevServer, type DevServer } from '../src/temporalDevServer.js';
import { bundleWorkflows } from '../src/worker.js';
import type { EnterpriseStatus } from '../src/workflows/enterpriseDefinitions.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { freePorts } from '../harness/ports.js';
import {
  startAndApprove,
  createSimulatedDomain,
  liveFreeBusyUsers,
  describeProgress,
  startWorkerProcess,
  type WorkerHandle,
} from './enterpriseSupport.js';
import { startBenchPostgres } from './postgres.js';
import { CLIENT, fmt, log, positive, sleep } from './support.js';

const STATE_SECRET = 'bench-state-signing-secret-0123456789abcdef';
const LIFTED_LIMIT = { perSecond: 1_000_000, perMinute: 60_000_000 };
/** The share of Cronofy API calls that fail or stall, each drawn on its own. */
const FAULTS = { serverError: 0.1, rateLimited: 0.05, slow: 0.02 } as const;
const SLOW_MS = 3_000;
const FAULT_BUDGET = 10_000_000;
const SERVER_DOWN_MS = 5_000;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '5000' },
    window: { type: 'string', default: '500' },
    timeout: { type: 'string', default: '3600' },
  },
});
const users = Math.floor(positive('users', args.users));
const window = Math.floor(positive('window', args.window));
const timeoutMs = positive('timeout', args.timeout) * 1000;

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cleanups: Array<() => Promise<unknown>> = [];
  const scratch = mkdtempSync(join(tmpdir(), 'bench-chaos-'));
  cleanups.push(async () => rmSync(scratch, { recursive: true, force: true }));
  try {
    const bundlePath = join(scratch, 'workflows.js');
    writeFileSync(bundlePath, (await bundleWorkflows()).code);

    // A file-backed dev server on fixed ports, so that it can be stopped and started again on the same data.
    const [port, uiPort] = await freePorts(2);
    const serverOptions = { port: port!, uiPort: uiPort!, dbFile: join(scratch, 'temporal.db') };
    let server: DevServer = await startDevServer(serverOptions);
    cleanups.push(() => server.stop());
    const payloadKeys = Keyring.generateSpec('payload1');
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const temporal = new Client({ connection, dataConverter });

    const scratchDatabase = await createScratchDatabase(startBenchPostgres().url, 'chaos');
    cleanups.push(() => scratchDatabase.drop());
    const database = await openDatabase(scratchDatabase.url);
    cleanups.push(() => database.close());
    const keys = Keyring.generateSpec('chaos1');
    const { store, enterpriseUsers } = createStores(database, Keyring.parse(keys));

    const { callbacks, simulator, redirectUri } = await startCallbacksAndSimulator(
      temporalCallbackDeps(temporal, store, new StateSigner(STATE_SECRET)),
      LIFTED_LIMIT,
      cleanups,
    );
    const sim = (path: string) => `${simulator.url}${path}`;

    const taskQueue = `chaos-${Date.now()}`;
    const workerEnv = {
      BENCH_DATABASE_URL: scratchDatabase.url,
      BENCH_CREDENTIAL_KEYS: keys,
      BENCH_PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      BENCH_STATE_SECRET: STATE_SECRET,
      BENCH_SIMULATOR_URL: simulator.url,
      BENCH_CLIENT_ID: CLIENT.clientId,
      BENCH_CLIENT_SECRET: CLIENT.clientSecret,
      BENCH_TEMPORAL_ADDRESS: server.address,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_WORKFLOW_BUNDLE: bundlePath,
      BENCH_CRONOFY_CALLS_PER_SECOND: '100000',
      BENCH_REDIRECT_URI: redirectUri,
      BENCH_SERVICE_ACCOUNT_CALLBACK_URL: `${callbacks.url}${SERVICE_ACCOUNT_CALLBACK_PATH}`,
    };
    let worker: WorkerHandle = await startWorkerProcess(workerEnv);
    cleanups.push(() => worker.stop());

    const domain = `chaos${users}.example.org`;
    const { emails, serviceAccount } = await createSimulatedDomain(simulator.url, domain, users);
    const enterprise = new EnterpriseClient({
      temporal,
      taskQueue,
      store,
      users: enterpriseUsers,
      defaults: { deadlineMs: 600_000, reminderIntervalMs: 300_000, maxPrompts: 3 },
    });
    const started = Date.now();
    const deadline = started + timeoutMs;
    await startAndApprove(
      enterprise,
      { domain, emails, serviceAccount },
      {
        window,
        deadline,
        // Callbacks lost while the server is down are asked for again; a user has ten chances.
        userDeadlineMs: 60_000,
        maxUserRequests: 10,
      },
    );
    const { captureId } = await enterprise.get(domain);

    // Every Cronofy API call from now on draws its fault; each fault is tried in turn on the calls the ones
    // before it let through, so the shares below are of all calls.
    await got.post(sim('/_sim/faults'), {
      json: [
        { endpoint: '*', status: 503, probability: FAULTS.serverError, count: FAULT_BUDGET },
        {
          endpoint: '*',
          status: 429,
          retryAfterSeconds: 1,
          probability: FAULTS.rateLimited / (1 - FAULTS.serverError),
          count: FAULT_BUDGET,
        },
        {
          endpoint: '*',
          delayMs: SLOW_MS,
          probability: FAULTS.slow / (1 - FAULTS.serverError - FAULTS.rateLimited),
          count: FAULT_BUDGET,
        },
      ],
    });
    log(`faults on: ${JSON.stringify(FAULTS)} of Cronofy API calls (slow = ${SLOW_MS} ms)`);

    const recorded = async () => {
      const counts = await enterpriseUsers.countsByState(captureId);
      return Object.values(counts).reduce((a, b) => a + b, 0);
    };
    const events: string[] = [];
    const note = (event: string) => {
      events.push(`${fmt((Date.now() - started) / 1000, 0)} s: ${event}`);
      log(event);
    };
    const whenRecorded = async (share: number) => {
      while ((await recorded()) < users * share) {
        if (Date.now() > deadline) throw new Error(`timeout before ${share * 100} % of the users were done`);
        await sleep(500);
      }
    };
    const killWorker = async () => {
      await worker.kill();
      note(`worker killed with SIGKILL at ${await recorded()} users recorded`);
      worker = await startWorkerProcess(workerEnv);
    };

    await whenRecorded(1 / 5);
    await killWorker();
    await whenRecorded(1 / 2);
    await server.stop();
    note(`Temporal server stopped at ${await recorded()} users recorded`);
    await sleep(SERVER_DOWN_MS);
    server = await startDevServer(serverOptions);
    note(`Temporal server started again on the same database file at ${await recorded()} users recorded`);
    await whenRecorded(2 / 3);
    await killWorker();

    const result = await finalStatus(enterprise, domain, deadline);
    const wallS = (Date.now() - started) / 1000;
    await got.delete(sim('/_sim/faults'));

    // What the run must show: every user once, completed, Free/Busy at Cronofy, one credential each.
    const outcomes = await enterpriseUsers.outcomes(captureId, { limit: users + 1 });
    const emailsWithOutcome = new Set(outcomes.map((outcome) => outcome.email));
    const lost = emails.filter((email) => !emailsWithOutcome.has(email)).length;
    const notCompleted = outcomes.filter((outcome) => outcome.state !== 'completed').length;
    const twice = await database.query<{ label: string }>(
      `SELECT label FROM credentials WHERE kind = 'account' GROUP BY label HAVING count(*) > 1`,
    );
    const rewritten = await database.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM enterprise_user_outcomes WHERE capture_id = $1 AND attempts > 1',
      [captureId],
    );
    const freeBusyActive = await liveFreeBusyUsers(simulator.url);
    const requests = z.array(z.object({ status: z.number() })).parse(await got(sim('/_sim/requests')).json());
    const answered = (test: (status: number) => boolean) => requests.filter((r) => test(r.status)).length;

    const ok =
      result.phase === 'completed' &&
      result.counts.completed === users &&
      outcomes.length === users &&
      lost === 0 &&
      notCompleted === 0 &&
      twice.length === 0 &&
      freeBusyActive === users;
    console.log(`\n### Chaos: ${users} users, window ${window}, file-backed dev server\n`);
    console.log(
      '| users | outcome | wall s | users with an outcome | completed | lost | granted twice | outcome written again | Free/Busy live at the simulator | Cronofy calls answered 5xx / 429 (of all) | parent runs |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${users} | ${result.phase} | ${fmt(wallS, 0)} | ${outcomes.length} | ${result.counts.completed ?? 0} | ${lost} | ` +
        `${twice.length} | ${rewritten[0]?.count ?? 0} | ${freeBusyActive} | ` +
        `${answered((s) => s >= 500)} / ${answered((s) => s === 429)} (${requests.length}${requests.length >= 100_000 ? ', log full' : ''}) | ${result.runs} |`,
    );
    console.log(`\nFaults and restarts:\n${events.map((event) => `- ${event}`).join('\n')}`);
    console.log(ok ? '\nCHAOS OK' : '\nCHAOS FAILED');
    return ok ? 0 : 1;
  } finally {
    for (const step of cleanups.reverse())
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

/** The domain's final status, asking again through the server's restart and the worker's kills. */
async function finalStatus(
  enterprise: EnterpriseClient,
  domain: string,
  deadline: number,
): Promise<EnterpriseStatus> {
  let lastLog = 0;
  for (;;) {
    const status = await enterprise.get(domain).catch(() => undefined);
    if (status && status.phase !== 'moving_users') return status;
    if (Date.now() > deadline) throw new Error(`timeout: ${status ? describeProgress(status) : 'no status'}`);
    if (status && Date.now() - lastLog > 15_000) {
      log(describeProgress(status));
      lastLog = Date.now();
    }
    await sleep(1_000);
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
setTimeout(() => process.exit(), 5_000).unref();
