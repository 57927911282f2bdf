/**
 * The worker as the image starts it — `node dist/src/main.js` with SERVICE_ROLES=worker and NODE_ENV=production,
 * after `npm run build` — never bundles its workflow code. A preloaded hook replaces @temporalio/worker's
 * bundleWorkflowCode with one that counts the call and throws, and reports at exit whether webpack's compiler was
 * ever loaded. The worker from dist/ polls all its task queues with the hook never called and webpack never loaded,
 * untraced and traced (each tracing choice has its bundle in dist/). The same hook stops a worker started from
 * source without a bundle, which bundles as it starts: the hook does catch the call it is there to catch.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { BUILD_LOCK } from '../harness/build.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import { TEST_CREDENTIAL_KEYS, TEST_PAYLOAD_ENCRYPTION_KEYS } from '../harness/stack.js';
import { startTemporalServer } from '../harness/temporalServer.js';
import { waitUntil } from '../harness/waitUntil.js';
import { cronofyTaskQueue } from '../src/workflows/definitions.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { TASK_QUEUE_TYPE_WORKFLOW: WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY: ACTIVITY } =
  proto.temporal.api.enums.v1.TaskQueueType;

/** Preloaded with --require: bundleWorkflowCode counts its calls and throws; at exit, what happened is written. */
const HOOK = `
const { createRequire } = require('node:module');
const { writeFileSync } = require('node:fs');
const projectRequire = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
const bundler = projectRequire('@temporalio/worker/lib/workflow/bundler.js');
let calls = 0;
bundler.bundleWorkflowCode = () => {
  calls += 1;
  throw new Error('bundleWorkflowCode was called (test/workerBundle.test.ts forbids it)');
};
process.on('exit', () => {
  const webpackLoaded = Object.keys(projectRequire.cache).filter((file) =>
    /[\\\\/]node_modules[\\\\/]webpack[\\\\/]lib[\\\\/](webpack|Compiler)\\.js$/.test(file),
  );
  writeFileSync(process.env.HOOK_REPORT, JSON.stringify({ calls, webpackLoaded }));
});
`;

interface HookReport {
  calls: number;
  webpackLoaded: string[];
}

let env: TestWorkflowEnvironment;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let hookDir: string;
let build: ChildProcess | undefined;

before(async () => {
  env = await startTemporalServer();
  scratch = await createScratchDatabase(testPostgresUrl(), 'bundle');
  hookDir = mkdtempSync(join(tmpdir(), 'cronofy-downgrade-worker-bundle-'));
  writeFileSync(join(hookDir, 'hook.cjs'), HOOK);
});

after(async () => {
  build?.stdin?.end();
  await scratch?.drop();
  await env?.teardown();
  if (hookDir) rmSync(hookDir, { recursive: true, force: true });
});

let started = 0;

/** The service with SERVICE_ROLES=worker, configured as docker-compose.yml's downgrade-worker, the hook preloaded. */
function startWorker(options: { fromSource: boolean; tracing: boolean }) {
  started += 1;
  const taskQueue = `bundle-${process.pid}-${started}`;
  const report = join(hookDir, `report-${started}.json`);
  // Not the test run's own: no bundle path, no tracing, no loader in NODE_OPTIONS.
  const {
    WORKFLOW_BUNDLE_PATH: _bundle,
    OTEL_EXPORTER_OTLP_ENDPOINT: _tracing,
    NODE_OPTIONS: _options,
    ...inherited
  } = process.env;
  const child = spawn(
    process.execPath,
    [
      '--require',
      join(hookDir, 'hook.cjs'),
      ...(options.fromSource ? ['--import', 'tsx', 'src/main.ts'] : ['dist/src/main.js']),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...inherited,
        HOOK_REPORT: report,
        NODE_ENV: 'production',
        NODE_OPTIONS: '--max-old-space-size=128',
        MALLOC_ARENA_MAX: '2',
        SERVICE_ROLES: 'worker',
        LOG_LEVEL: 'error',
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_TASK_QUEUE: taskQueue,
        DATABASE_URL: scratch.url,
        CREDENTIAL_KEYS: TEST_CREDENTIAL_KEYS,
        PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
        CODEC_SERVER_TOKEN: 'worker-bundle-codec-token-0123456789',
        STATE_SIGNING_SECRET: 'worker-bundle-state-signing-secret-0123456789',
        // A Cronofy that is never called here; configured, so that no simulator starts in the process.
        CRONOFY_CLIENT_ID: 'worker-bundle-app',
        CRONOFY_CLIENT_SECRET: 'worker-bundle-secret',
        CRONOFY_API_URL: 'http://127.0.0.1:9',
        CRONOFY_APP_URL: 'http://127.0.0.1:9',
        METRICS_BIND_ADDRESS: 'off',
        ...(options.tracing ? { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' } : {}),
      },
    },
  );
  const output: string[] = [];
  for (const stream of [child.stdout!, child.stderr!])
    createInterface({ input: stream }).on('line', (line) => output.push(line));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    taskQueue,
    exited,
    log: () => output.slice(-20).join('\n'),
    report: (): HookReport => JSON.parse(readFileSync(report, 'utf8')) as HookReport,
  };
}

/** Whether the server has this process's pollers on all three task queues of the worker. */
async function pollingAll(taskQueue: string): Promise<boolean> {
  const queues = [
    { name: taskQueue, type: WORKFLOW },
    { name: taskQueue, type: ACTIVITY },
    { name: cronofyTaskQueue(taskQueue), type: ACTIVITY },
  ];
  const answers = await Promise.all(
    queues.map(({ name, type }) =>
      env.connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name },
        taskQueueType: type,
      }),
    ),
  );
  return answers.every((answer) => (answer.pollers?.length ?? 0) > 0);
}

test('the hook stops a worker that bundles as it starts (from source, no bundle given)', async () => {
  const worker = startWorker({ fromSource: true, tracing: false });
  const code = await worker.exited;
  assert.equal(code, 1, `the worker should fail to start:\n${worker.log()}`);
  assert.equal(worker.report().calls, 1, 'bundleWorkflowCode was called once, and refused');
  assert.match(worker.log(), /bundleWorkflowCode was called/);
});

test(
  'the worker started from dist/ polls its task queues without ever calling bundleWorkflowCode',
  { timeout: 300_000 },
  async (t) => {
    // `npm run build` (tsc, then the workflow bundles; once for every test run in this checkout: scripts/build-once.sh)
    // with the build lock held until the workers below have read dist/.
    build = spawn(
      'flock',
      [
        BUILD_LOCK,
        'sh',
        '-c',
        'out=$(bash scripts/build-once.sh 2>&1) || { echo "$out" >&2; exit 1; }; echo built; read _',
      ],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let buildErrors = '';
    build.stderr!.on('data', (chunk: Buffer) => (buildErrors += chunk.toString()));
    const built = await new Promise<boolean>((resolve) => {
      createInterface({ input: build!.stdout! }).on('line', (line) => line === 'built' && resolve(true));
      build!.once('exit', () => resolve(false));
    });
    try {
      assert.ok(built, `npm run build failed:\n${buildErrors}`);
      for (const tracing of [false, true]) {
        const bundle = join(ROOT, 'dist', `workflow-bundle${tracing ? '.traced' : ''}.js`);
        assert.ok(existsSync(bundle), `npm run build must write ${bundle} (scripts/bundle-workflows.ts)`);

        const startedAt = performance.now();
        const worker = startWorker({ fromSource: false, tracing });
        await waitUntil(
          `the worker (tracing ${tracing ? 'on' : 'off'}) polls its task queues`,
          async () => {
            if (worker.child.exitCode !== null)
              throw new Error(`the worker exited (${worker.child.exitCode}):\n${worker.log()}`);
            return pollingAll(worker.taskQueue);
          },
          { timeoutMs: 60_000, intervalMs: 50 },
        ).catch((error: unknown) => {
          worker.child.kill('SIGKILL');
          throw error;
        });
        t.diagnostic(
          `tracing ${tracing ? 'on' : 'off'}: polling ${Math.round(performance.now() - startedAt)} ms after spawn`,
        );
        worker.child.kill('SIGTERM');
        assert.equal(await worker.exited, 0, worker.log());
        const report = worker.report();
        assert.equal(report.calls, 0, 'bundleWorkflowCode was never called');
        assert.deepEqual(report.webpackLoaded, [], "webpack's compiler was never loaded");
      }
    } finally {
      // Releases the build lock.
      build.stdin!.end();
    }
  },
);
