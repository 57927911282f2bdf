// The stack: Temporal dev server, PostgreSQL, simulator and service, each in its own process.
import { payloadEncryption } from '../../src/codec/payloadEncryption.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from '../../harness/temporalServer.js';
import type { NativeConnection } from '@temporalio/worker';
import { IndividualClient } from '../../src/client.js';
import { REDIRECT_PATH } from '../../src/contracts/callbackPaths.js';
import { freePorts } from '../../harness/ports.js';
import { startService } from '../serviceProcess.js';
import { createScratchDatabase } from '../../harness/postgres.js';
import { CredentialStore } from '../../src/store/credentialStore.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { Keyring } from '../../src/store/encryption.js';
import { startSimulatorProcess } from '../simulatorFork.js';
import { findPid, postmasterPid } from '../cpu.js';
import { CLIENT, log } from '../support.js';
import { options, PROMPT_MS } from './options.js';

/** `--dev-server-store wal`: the dev server's database file, removed after the server has stopped. */
function devServerStoreArgs(cleanups: Array<() => Promise<unknown>>): string[] {
  if (options.devServerStore === 'memory') return [];
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-callbacks-temporal-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return [
    '--db-filename',
    join(dir, 'temporal.db'),
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=off',
  ];
}

export interface Stack {
  client: Client;
  /** For a worker in this process (the waking yardstick), with the client's namespace and payload encryption. */
  nativeConnection: NativeConnection;
  namespace: string;
  dataConverter: DataConverter;
  individual: IndividualClient;
  taskQueue: string;
  callbackBase: string;
  simulatorUrl: string;
  stateSecret: string;
  metricsUrl: string;
  /** The service's own Prometheus endpoint (`downgrade_callbacks` by endpoint, status and result). */
  serviceMetricsUrl: string;
  /** The service's log files: one, or the callback server's and the worker's. */
  serviceLogs: string[];
  profileDir: string;
  pids: Record<string, number | undefined>;
  stop(): Promise<void>;
}

export async function startStack(
  adminUrl: string,
  pgDataDir: string | undefined,
  scratch: string,
): Promise<Stack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
    cleanups.length = 0;
  };
  try {
    const [metricsPort, callbackPort, serviceMetricsPort, workerMetricsPort] = await freePorts(4);
    const external = options.temporal;
    const env = external
      ? await TestWorkflowEnvironment.createFromExistingServer({
          address: external.address,
          namespace: external.namespace,
        })
      : await startTemporalServer({
          extraArgs: ['--metrics-port', String(metricsPort), ...devServerStoreArgs(cleanups)],
        });
    cleanups.push(() => env.teardown());
    const scratchDatabase = await createScratchDatabase(adminUrl, 'benchcb');
    cleanups.push(() => scratchDatabase.drop());
    const databaseUrl = scratchDatabase.url;

    const callbackBase = `http://127.0.0.1:${callbackPort}`;
    const simulator = await startSimulatorProcess(`${callbackBase}${REDIRECT_PATH}`);
    cleanups.push(() => simulator.stop());

    const stateSecret = randomBytes(32).toString('base64url');
    const credentialKeys = Keyring.generateSpec('bench1');
    const payloadKeys = Keyring.generateSpec('benchpayload1');
    const taskQueue = `bench-callbacks-${Date.now()}`;
    const serviceEnv = {
      NODE_ENV: 'production',
      LOG_LEVEL: options.logLevel,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: external?.namespace ?? 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: databaseUrl,
      CREDENTIAL_KEYS: credentialKeys,
      PAYLOAD_ENCRYPTION_KEYS: payloadKeys,
      CODEC_SERVER_TOKEN: randomBytes(24).toString('base64url'),
      CODEC_SERVER_PORT: '0',
      STATE_SIGNING_SECRET: stateSecret,
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: simulator.url,
      CRONOFY_APP_URL: simulator.url,
      CRONOFY_CALLS_PER_SECOND: String(options.cronofyCallsPerSecond),
      CALLBACK_HOST: '127.0.0.1',
      CALLBACK_PORT: String(callbackPort),
      // Its own port: the default 9464 is shared with everything else on the machine.
      METRICS_BIND_ADDRESS: `127.0.0.1:${serviceMetricsPort}`,
    };
    const stamp = Date.now();
    const pids: Record<string, number | undefined> = {};
    const serviceLogs: string[] = [];
    const processes =
      options.roles === 'combined'
        ? [{ name: 'service', roles: 'worker,callbacks,codec', metricsPort: serviceMetricsPort }]
        : [
            { name: 'callbacks', roles: 'callbacks,codec', metricsPort: serviceMetricsPort },
            { name: 'worker', roles: 'worker', metricsPort: workerMetricsPort },
          ];
    for (const { name, roles, metricsPort } of processes) {
      const logFile = join(scratch, `${name}-${stamp}.log`);
      serviceLogs.push(logFile);
      const service = await startService({
        env: { ...serviceEnv, SERVICE_ROLES: roles, METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}` },
        readyUrl: roles.includes('callbacks')
          ? `${callbackBase}/healthz`
          : `http://127.0.0.1:${metricsPort}/metrics`,
        logFile,
        node: options.serviceNode,
        nodeArgs: options.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(scratch, 'profiles')}`] : [],
      });
      cleanups.push(async () => {
        await service.stop();
        if (options.profile) log(`service CPU profile(s) in ${join(scratch, 'profiles')}`);
      });
      pids[name] = service.pid;
    }

    // This process's client encodes payloads with the service's key, as an application's would.
    const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: payloadKeys });
    const namespace = env.namespace ?? 'default';
    const client = new Client({ connection: env.connection, namespace, dataConverter });
    const database: Database = await openDatabase(databaseUrl);
    cleanups.push(() => database.close());
    const individual = new IndividualClient({
      temporal: client,
      taskQueue,
      store: new CredentialStore(database, Keyring.parse(credentialKeys)),
      defaults: { deadlineMs: PROMPT_MS, reminderIntervalMs: PROMPT_MS, maxPrompts: 1 },
    });
    return {
      client,
      nativeConnection: env.nativeConnection,
      namespace,
      dataConverter,
      individual,
      taskQueue,
      callbackBase,
      simulatorUrl: simulator.url,
      stateSecret,
      metricsUrl: external?.metricsUrl ?? `http://127.0.0.1:${metricsPort}/metrics`,
      serviceMetricsUrl: `http://127.0.0.1:${serviceMetricsPort}/metrics`,
      serviceLogs,
      profileDir: join(scratch, 'profiles'),
      pids: {
        // A server the benchmark did not start is not measured (it may not even be on this machine).
        'dev server': external
          ? undefined
          : findPid((cmdline) => cmdline.includes('start-dev') && cmdline.includes(String(metricsPort))),
        ...pids,
        simulator: simulator.pid,
        PostgreSQL: pgDataDir ? postmasterPid(pgDataDir) : undefined,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
