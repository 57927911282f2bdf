import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import got from 'got';
import { IndividualRuns, payloadEncryption } from '../src/client.js';
import { SIMULATOR_CLIENT } from '../src/services.js';
import { freePorts } from '../harness/ports.js';
import { waitUntilAnswering } from '../harness/serviceProcess.js';
import { decideOnConsentPage, followRedirect } from '../harness/stack.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

let scratch: string;
let env: NodeJS.ProcessEnv;
let ports: { temporal: number; ui: number; simulator: number; callbacks: number; codec: number; api: number };
let service: ChildProcess | undefined;

/** `npm start` as a person runs it in a fresh clone: every default, its data in `.data/` of its directory. */
async function startService(): Promise<void> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN], {
    cwd: scratch,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  service = child;
  // The API starts last of the servers.
  await waitUntilAnswering(child, `http://127.0.0.1:${ports.api}/healthz`);
}

async function stopService(): Promise<void> {
  const child = service;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cronofy-downgrade-restart-'));
  const [temporal, ui, simulator, callbacks, codec, api] = await freePorts(6);
  ports = {
    temporal: temporal!,
    ui: ui!,
    simulator: simulator!,
    callbacks: callbacks!,
    codec: codec!,
    api: api!,
  };
  env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !/^(TEMPORAL_|CRONOFY_|DATABASE_URL|SERVICE_ROLES|PAYLOAD_|CREDENTIAL_|NODE_ENV)/.test(name),
    ),
  );
  Object.assign(env, {
    TEMPORAL_DEV_SERVER_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    SIMULATOR_PORT: String(ports.simulator),
    CALLBACK_PORT: String(ports.callbacks),
    CODEC_SERVER_PORT: String(ports.codec),
    API_PORT: String(ports.api),
    METRICS_BIND_ADDRESS: 'off',
    LOG_LEVEL: 'warn',
  });
});
after(async () => {
  await stopService();
  await rm(scratch, { recursive: true, force: true });
});

test(
  'a downgrade waiting for the person completes after npm start is stopped and started again',
  { timeout: 300_000 },
  async () => {
    await startService();
    const email = `restart-${Date.now()}@example.com`;
    const user = await got
      .post(`http://127.0.0.1:${ports.simulator}/_sim/accounts`, {
        json: { email, client_id: SIMULATOR_CLIENT.clientId },
      })
      .json<{ sub: string }>();
    const secrets = JSON.parse(await readFile(join(scratch, '.data', 'local-secrets.json'), 'utf8')) as {
      PAYLOAD_ENCRYPTION_KEYS: string;
      API_ADMIN_KEY: string;
    };
    // A backend of another language would use the HTTP API, with the admin key npm start keeps in .data/.
    const api = got.extend({
      prefixUrl: `http://127.0.0.1:${ports.api}/v1`,
      headers: { authorization: `Bearer ${secrets.API_ADMIN_KEY}` },
    });
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    try {
      const individual = new IndividualRuns({
        temporal: new Client({ connection, dataConverter: payloadEncryption(secrets).dataConverter }),
        taskQueue: 'cronofy-downgrade',
        defaults: { deadlineMs: 3_600_000, reminderIntervalMs: 3_600_000, maxPrompts: 3 },
      });
      const { workflowId, authorizationUrl } = await api
        .post('downgrades', { json: { sub: user.sub } })
        .json<{ workflowId: string; authorizationUrl: string }>();

      // The person takes their time; meanwhile the service is stopped and started again.
      await stopService();
      await startService();
      const status = await api.get(`downgrades/${workflowId}`).json<{ state: string }>();
      assert.equal(status.state, 'awaiting_reauthorization');

      const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email });
      assert.equal((await followRedirect(location)).status, 303);
      const result = await individual.waitForResult(workflowId);
      assert.equal(result.state, 'completed', result.reason);
      assert.equal(result.providerName, 'google_free_busy');
    } finally {
      await connection.close();
    }
  },
);
