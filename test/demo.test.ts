/**
 * `npm start` and `npm run demo` as a person runs them in a fresh clone, each its own process in one directory:
 * the service's first start prints no warning for what is designed (the Cronofy queue's worker polls for no
 * workflows), and a demo waiting for the person through a stop and a new start of the service says the service
 * went away, picks up when it is back, and prints the downgrade's ending without a stack trace.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../harness/ports.js';
import { waitUntilAnswering } from '../harness/serviceProcess.js';
import { decideOnConsentPage, followRedirect } from '../harness/stack.js';
import { waitUntil, WaitAbandoned } from '../harness/waitUntil.js';
import { testWorkflowBundlePath } from '../harness/workflowBundle.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const DEMO = fileURLToPath(new URL('../src/demo.ts', import.meta.url));

const WENT_AWAY = 'The service went away';
const BACK = 'The service is back';

let scratch: string;
let env: NodeJS.ProcessEnv;
let apiPort: number;
let service: ChildProcess | undefined;
/** Everything every start of the service wrote to stderr, in order. */
let serviceStderr = '';

interface Output {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | string>;
}

function run(script: string, args: string[] = []): Output {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args], {
    cwd: scratch,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: Output = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1))),
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  return output;
}

/** `npm start`, waiting until its HTTP API (the last of its servers) answers. */
async function startService(): Promise<void> {
  const started = run(MAIN);
  service = started.child;
  started.child.stderr!.on('data', (chunk: string) => (serviceStderr += chunk));
  await waitUntilAnswering(started.child, `http://127.0.0.1:${apiPort}/healthz`, {
    detail: () => `\n${started.stderr}`,
  });
}

async function stopService(): Promise<void> {
  const child = service;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Waits until the demo has printed `text`; fails at once if it exits first. */
function printed(demo: Output, text: string): Promise<string> {
  return waitUntil(
    `the demo prints "${text}"`,
    () => {
      if (demo.stdout.includes(text)) return demo.stdout;
      if (demo.child.exitCode !== null) {
        throw new WaitAbandoned(`it exited (${demo.child.exitCode}):\n${demo.stdout}\n${demo.stderr}`);
      }
      return undefined;
    },
    { timeoutMs: 180_000, intervalMs: 200 },
  );
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cronofy-downgrade-demo-'));
  const [temporal, ui, simulator, callbacks, codec, api] = await freePorts(6);
  apiPort = api!;
  env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !/^(TEMPORAL_|CRONOFY_|DATABASE_URL|SERVICE_ROLES|PAYLOAD_|CREDENTIAL_|NODE_ENV|OTEL_|LOG_LEVEL)/.test(
          name,
        ),
    ),
  );
  Object.assign(env, {
    TEMPORAL_DEV_SERVER_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    SIMULATOR_PORT: String(simulator),
    CALLBACK_PORT: String(callbacks),
    CODEC_SERVER_PORT: String(codec),
    API_PORT: String(api),
    METRICS_BIND_ADDRESS: 'off',
    // The bundle the tests share: each start would otherwise spend seconds of CPU in webpack.
    WORKFLOW_BUNDLE_PATH: await testWorkflowBundlePath(),
  });
});

after(async () => {
  await stopService();
  await rm(scratch, { recursive: true, force: true });
});

test(
  'npm start warns of nothing designed, and npm run demo waits through a restart of the service to the end',
  { timeout: 360_000 },
  async () => {
    await startService();
    // The first start: the service's own lines are the first thing on stderr; no warning of the SDK's.
    assert.doesNotMatch(serviceStderr, /No workflows registered/);
    assert.doesNotMatch(serviceStderr, /\[WARN\]/);

    const email = `demo-${Date.now()}@example.com`;
    const demo = run(DEMO, [email]);
    const waiting = await printed(demo, 'Waiting for the person to answer');
    const link = /Open this link and choose Free\/Busy:\s+(\S+)/.exec(waiting)?.[1];
    assert.ok(link, waiting);

    // The person takes their time; meanwhile the service is stopped, and started again only after the demo saw it go.
    await stopService();
    await printed(demo, WENT_AWAY);
    await startService();
    await printed(demo, BACK);

    const location = await decideOnConsentPage(link, 'free_busy_google', { email });
    assert.equal((await followRedirect(location)).status, 303);
    assert.equal(await demo.exited, 0, `${demo.stdout}\n${demo.stderr}`);

    assert.match(demo.stdout, /Downgrade ended: completed, provider google_free_busy/);
    // One notice for the one outage, then one line when it was back, in that order, before the ending.
    assert.equal(demo.stdout.split(WENT_AWAY).length - 1, 1, demo.stdout);
    assert.equal(demo.stdout.split(BACK).length - 1, 1, demo.stdout);
    assert.ok(demo.stdout.indexOf(WENT_AWAY) < demo.stdout.indexOf(BACK));
    assert.ok(demo.stdout.indexOf(BACK) < demo.stdout.indexOf('Downgrade ended'));
    // No stack trace, no error and no retry warning of the native client: nothing on stderr at all.
    assert.equal(demo.stderr, '', demo.stderr);
    assert.doesNotMatch(demo.stdout, /ServiceError|\n\s+at /);
  },
);
