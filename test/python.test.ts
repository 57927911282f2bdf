/**
 * The HTTP API from Python (test/python/test_api.py: requests and the `standardwebhooks` library, installed into
 * .venv-tests by scripts/prepare-tests.sh), as a backend of another language uses it. This file starts what that
 * backend talks to, on real sockets: a Temporal dev server, a fresh PostgreSQL database, the Cronofy simulator (its
 * rate limit lifted), and the service (src/main.ts, every role) posting its webhook, signed per Standard Webhooks,
 * to the port the Python test listens on. Then it runs the Python test and asserts that it passes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RunningSimulator } from '../simulator/server.js';
import { generateApiKey } from '../src/contracts/apiKeyFormat.js';
import { ApiKeys } from '../src/store/apiKeys.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { freePorts } from '../harness/ports.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import { CLIENT } from '../harness/stack.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = `${ROOT}.venv-tests/bin/python`;
const SCRIPT = `${ROOT}test/python/test_api.py`;
/** Only catches a hang: the Python test waits for what it needs and takes well under a minute when it passes. */
const PYTHON_HANG_MS = 10 * 60_000;

const taskQueue = `python-${Date.now()}`;
const adminKey = generateApiKey();
/** A Standard Webhooks secret, as an operator makes one: whsec_ and the base64 of 32 random bytes. */
const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;

let env: TestWorkflowEnvironment | undefined;
let simulator: RunningSimulator | undefined;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
let service: ServiceProcess | undefined;
/** What the Python test is given, besides the secret and the admin key. */
let pythonEnv: Record<string, string>;

before(async () => {
  // Cronofy's limits (50/s, 500/min) would only slow the run down: the service's own rate limit is what it obeys.
  const surroundings = await startServiceSurroundings({ perSecond: 100_000, perMinute: 1_000_000 });
  ({ env, simulator } = surroundings);
  scratch = await createScratchDatabase(testPostgresUrl(), 'python');
  // Migrated here, before the service opens it: the narrower keys are made on it now.
  const database = await openDatabase(scratch.url);
  let keys: Record<string, string>;
  try {
    const apiKeys = new ApiKeys(database);
    keys = {
      API_KEY_BACKEND: (
        await apiKeys.create('python backend', ['downgrades:write', 'downgrades:read', 'credentials:read'])
      ).key,
      API_KEY_OPERATOR: (await apiKeys.create('python operator', ['operators:write', 'operators:read'])).key,
      API_KEY_APPROVER: (await apiKeys.create('python approver', ['operators:approve'])).key,
    };
  } finally {
    await database.close();
  }
  const [apiPort, webhookPort] = (await freePorts(2)) as [number, number];
  service = await startServiceProcess({
    temporalAddress: env.address,
    taskQueue,
    databaseUrl: scratch.url,
    credentialKeys: Keyring.generateSpec('python1'),
    simulatorUrl: simulator.url,
    callbackPort: surroundings.callbackPort,
    // The API starts last of the servers.
    readyUrl: `http://127.0.0.1:${apiPort}/healthz`,
    env: {
      SERVICE_ROLES: 'worker,callbacks,codec,api',
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      API_ADMIN_KEY: adminKey,
      APP_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/webhooks/downgrades`,
      APP_WEBHOOK_SIGNING_SECRETS: webhookSecret,
    },
  });
  pythonEnv = {
    API_URL: `http://127.0.0.1:${apiPort}`,
    SIMULATOR_URL: simulator.url,
    CRONOFY_CLIENT_ID: CLIENT.clientId,
    WEBHOOK_PORT: String(webhookPort),
    ...keys,
  };
});

after(async () => {
  await service?.stop('SIGKILL');
  await scratch?.drop();
  await simulator?.close();
  await env?.teardown();
});

/** Runs the Python test; its exit code (or the signal that ended it) and everything it wrote, stdout and stderr. */
async function runPython(): Promise<{ exit: number | string; output: string; hung: boolean }> {
  const child = spawn(PYTHON, [SCRIPT], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONUNBUFFERED: '1',
      ...pythonEnv,
      API_ADMIN_KEY: adminKey,
      WEBHOOK_SECRET: webhookSecret,
    },
  });
  const output: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, PYTHON_HANG_MS);
  try {
    const exit = await new Promise<number | string>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve(code ?? signal ?? -1));
    });
    return { exit, output: output.join(''), hung };
  } finally {
    clearTimeout(timer);
  }
}

test(
  'from Python: an Individual downgrade, a domain of 100 users and every webhook verified with standardwebhooks',
  { timeout: PYTHON_HANG_MS + 60_000 },
  async (t) => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run bash scripts/prepare-tests.sh (npm's pretest)`);
    const { exit, output, hung } = await runPython();
    const shown = `\n--- test/python/test_api.py ---\n${output}`;
    assert.ok(!hung, `the Python test hung for ${PYTHON_HANG_MS / 60_000} minutes and was killed${shown}`);
    assert.equal(exit, 0, `the Python test exited ${exit}${shown}`);
    for (const line of output.trimEnd().split('\n')) t.diagnostic(line);
  },
);
