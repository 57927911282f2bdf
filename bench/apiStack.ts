/**
 * The stack of `bench/api.ts`: a Temporal dev server, a scratch PostgreSQL database, the Cronofy simulator
 * (`simulatorProcess.ts`, limits lifted) and the service (`src/main.ts`) in processes of their own, as deployed:
 * an API process (`SERVICE_ROLES=api`) and a worker process (`worker`), or one process with every role. This
 * process gets an API key and the service's own `IndividualClient` on the same Temporal and database.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { IndividualClient } from '../src/client/individualClient.js';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import { connectTemporal } from '../src/services.js';
import { ApiKeys } from '../src/store/apiKeys.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { createStores } from '../src/store/stores.js';
import { createScratchDatabase } from '../harness/postgres.js';
import { freePorts } from '../harness/ports.js';
import { startService } from './serviceProcess.js';
import { startTemporalServer } from '../harness/temporalServer.js';
import { testWorkflowBundlePath } from '../harness/workflowBundle.js';
import { findPid, postmasterPid } from './cpu.js';
import { startSimulatorProcess } from './simulatorFork.js';
import { CLIENT, log } from './support.js';

/** Each prompt waits an hour and is the only one: nothing expires or reminds during a run, on either path. */
export const PROMPT_MS = 3_600_000;
const PROMPT = '1h';

export interface ApiStackOptions {
  /** PostgreSQL admin URL (a scratch database is made and dropped) and its data folder, for its CPU. */
  adminUrl: string;
  pgDataDir: string | undefined;
  /** `split`: an API process and a worker process (docker-compose.yml); `combined`: one with every role. */
  roles: 'split' | 'combined';
  /** The service's API_RATE_LIMIT_PER_MINUTE; 0 turns the key's bucket (and its UPDATE) off. */
  apiRateLimitPerMinute: number;
  cronofyCallsPerSecond: number;
  logLevel: string;
  /** Where the service's logs go. */
  scratch: string;
}

export interface ApiStack {
  apiUrl: string;
  /** A key with `downgrades:write`, made through the service's key store. */
  apiKey: string;
  /** The service's own client in this process: the same Temporal, task queue, database and defaults. */
  individual: IndividualClient;
  simulatorUrl: string;
  serviceLogs: string[];
  pids: Record<string, number | undefined>;
  stop(): Promise<void>;
}

export async function startApiStack(options: ApiStackOptions): Promise<ApiStack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
    cleanups.length = 0;
  };
  try {
    const [metricsPort, callbackPort, apiPort, apiMetricsPort, workerMetricsPort] = await freePorts(5);
    const env = await startTemporalServer({ extraArgs: ['--metrics-port', String(metricsPort)] });
    cleanups.push(() => env.teardown());
    const scratchDatabase = await createScratchDatabase(options.adminUrl, 'benchapi');
    cleanups.push(() => scratchDatabase.drop());
    const databaseUrl = scratchDatabase.url;

    const callbackBase = `http://127.0.0.1:${callbackPort}`;
    const simulator = await startSimulatorProcess(`${callbackBase}${REDIRECT_PATH}`);
    cleanups.push(() => simulator.stop());

    const credentialKeys = Keyring.generateSpec('benchapi1');
    const payloadKeys = Keyring.generateSpec('benchapipayload1');
    const taskQueue = `bench-api-${Date.now()}`;
    const serviceEnv: Record<string, string> = {
      NODE_ENV: 'production',
      LOG_LEVEL: options.logLevel,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: databaseUrl,
      CREDENTIAL_KEYS: credentialKeys,
      PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      CODEC_SERVER_TOKEN: randomBytes(24).toString('base64url'),
      CODEC_SERVER_PORT: '0',
      STATE_SIGNING_SECRET: randomBytes(32).toString('base64url'),
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: simulator.url,
      CRONOFY_APP_URL: simulator.url,
      CRONOFY_CALLS_PER_SECOND: String(options.cronofyCallsPerSecond),
      CALLBACK_HOST: '127.0.0.1',
      CALLBACK_PORT: String(callbackPort),
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      API_RATE_LIMIT_PER_MINUTE: String(options.apiRateLimitPerMinute),
      // The same defaults as this process's client below.
      DOWNGRADE_DEADLINE: PROMPT,
      DOWNGRADE_REMINDER_INTERVAL: PROMPT,
      DOWNGRADE_MAX_PROMPTS: '1',
      // Built ahead, as `npm run bundle-workflows` does for production, so the worker does not bundle at start.
      WORKFLOW_BUNDLE_PATH: await testWorkflowBundlePath(),
    };
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const processes =
      options.roles === 'combined'
        ? [{ name: 'service', roles: 'worker,callbacks,codec,api', metricsPort: apiMetricsPort! }]
        : [
            { name: 'worker', roles: 'worker', metricsPort: workerMetricsPort! },
            { name: 'api', roles: 'api', metricsPort: apiMetricsPort! },
          ];
    const pids: Record<string, number | undefined> = {};
    const serviceLogs: string[] = [];
    const stamp = Date.now();
    for (const { name, roles, metricsPort: port } of processes) {
      const logFile = join(options.scratch, `${name}-${stamp}.log`);
      serviceLogs.push(logFile);
      const service = await startService({
        env: { ...serviceEnv, SERVICE_ROLES: roles, METRICS_BIND_ADDRESS: `127.0.0.1:${port}` },
        readyUrl: roles.includes('api') ? `${apiUrl}/healthz` : `http://127.0.0.1:${port}/metrics`,
        logFile,
      });
      cleanups.push(() => service.stop());
      pids[name] = service.pid;
    }

    // This process's client, made as src/main.ts makes the API's: the native connection, payloads encrypted.
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const temporal = await connectTemporal(
      { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default' },
      dataConverter,
    );
    cleanups.push(() => temporal.close());
    const database = await openDatabase(databaseUrl);
    cleanups.push(() => database.close());
    const individual = new IndividualClient({
      temporal: temporal.client,
      taskQueue,
      store: createStores(database, Keyring.parse(credentialKeys)).store,
      defaults: { deadlineMs: PROMPT_MS, reminderIntervalMs: PROMPT_MS, maxPrompts: 1 },
    });
    const { key: apiKey } = await new ApiKeys(database).create('bench', ['downgrades:write']);
    return {
      apiUrl,
      apiKey,
      individual,
      simulatorUrl: simulator.url,
      serviceLogs,
      pids: {
        ...pids,
        'dev server': findPid(
          (cmdline) => cmdline.includes('start-dev') && cmdline.includes(String(metricsPort)),
        ),
        simulator: simulator.pid,
        PostgreSQL: options.pgDataDir ? postmasterPid(options.pgDataDir) : undefined,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
