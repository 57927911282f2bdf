/**
 * The service (worker, callback server, codec server, API) as its own process, as production runs it: compiled, from
 * dist/ (`node dist/src/main.js`, as the image starts it, with the workflow bundle built beside it), started on a
 * given Temporal, database and Cronofy (the simulator), stopped with a signal. `npm start`'s own way, tsx over
 * src/main.ts, is tested where `npm start` is (test/demo.test.ts, test/restart.test.ts, test/cliNpmStart.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BUILT_MAIN, ensureBuilt } from './build.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from './temporalServer.js';
import got from 'got';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import { startSimulator, type RunningSimulator } from '../simulator/server.js';
import { freePort } from './ports.js';
import { CLIENT, STATE_SECRET, TEST_PAYLOAD_ENCRYPTION_KEYS, testPayloadEncryption } from './stack.js';

export interface ServiceProcessOptions {
  temporalAddress: string;
  taskQueue: string;
  databaseUrl: string;
  credentialKeys: string;
  simulatorUrl: string;
  callbackPort: number;
  cronofyCallsPerSecond?: number;
  /** What answers once the process is up; by default the callback server's /healthz. */
  readyUrl?: string;
  /** More variables, overriding the defaults. */
  env?: Record<string, string>;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Polls `url` until it answers, as a started service process becomes ready (bundling the workflow code takes
 * seconds, more on a loaded machine). Fails as soon as `child` exits, or after `timeoutMs` (killing it); `detail`
 * adds to the error (the tail of a log, say).
 */
export async function waitUntilAnswering(
  child: ChildProcess,
  url: string,
  options: { timeoutMs?: number; detail?: () => string } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ended = child.exitCode ?? child.signalCode;
    if (ended !== null)
      throw new Error(`the process exited (${ended}) before ${url} answered${options.detail?.() ?? ''}`);
    const answered = await got(url, { retry: { limit: 0 }, timeout: { request: 2_000 } }).then(
      () => true,
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${url} did not answer within ${timeoutMs / 1000} s${options.detail?.() ?? ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Starts the service and waits until it answers (`readyUrl`, by default its callback server's /healthz). */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  await ensureBuilt();
  const child = spawn(process.execPath, [BUILT_MAIN], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'error',
      TEMPORAL_ADDRESS: options.temporalAddress,
      TEMPORAL_TASK_QUEUE: options.taskQueue,
      DATABASE_URL: options.databaseUrl,
      CREDENTIAL_KEYS: options.credentialKeys,
      PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
      CODEC_SERVER_TOKEN: 'service-process-codec-token-0123456789',
      CODEC_SERVER_PORT: '0',
      API_PORT: '0',
      METRICS_BIND_ADDRESS: 'off',
      STATE_SIGNING_SECRET: STATE_SECRET,
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: options.simulatorUrl,
      CRONOFY_APP_URL: options.simulatorUrl,
      CRONOFY_CALLS_PER_SECOND: String(options.cronofyCallsPerSecond ?? 40),
      CALLBACK_HOST: '127.0.0.1',
      CALLBACK_PORT: String(options.callbackPort),
      ...options.env,
    },
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  await waitUntilAnswering(child, options.readyUrl ?? `http://127.0.0.1:${options.callbackPort}/healthz`);
  return {
    child,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * What the service process talks to: a Temporal dev server with the project's search attributes (its `env.client`
 * encodes payloads as the service does), and the Cronofy simulator, which redirects to the service's callback
 * server on `callbackPort`.
 */
export async function startServiceSurroundings(rateLimit: { perSecond: number; perMinute: number }): Promise<{
  env: TestWorkflowEnvironment;
  simulator: RunningSimulator;
  callbackPort: number;
}> {
  const env = await startTemporalServer({ client: { dataConverter: testPayloadEncryption().dataConverter } });
  const callbackPort = await freePort();
  const simulator = await startSimulator({
    clients: [{ ...CLIENT, redirectUris: [`http://127.0.0.1:${callbackPort}${REDIRECT_PATH}`] }],
    rateLimit,
  });
  return { env, simulator, callbackPort };
}
