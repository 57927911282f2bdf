/**
 * The service's worker alone in its own process, so the benchmark can measure its memory without its own:
 * the same workers as production (`createDowngradeWorkers`); or, with BENCH_TRIVIAL_TASK_QUEUE, only a worker for
 * the trivial yardstick workflows, in a process of its own that is stopped before the downgrade. Configured by environment variables, driven over IPC:
 * it sends `{ type: 'ready' }`, answers `{ type: 'stats' }` with its memory, and `{ type: 'stop' }` ends it.
 */
import { payloadEncryption } from '../src/codec/payloadEncryption.js';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { StateSigner } from '../src/contracts/stateToken.js';

import { CronofyClient } from '../src/cronofy/client.js';
import { createStores } from '../src/store/stores.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { setupTracing } from '../src/observability/tracing.js';
import { createDowngradeWorkers } from '../src/worker.js';

export interface WorkerStats {
  type: 'stats';
  /** Highest RSS and V8 heap in use, sampled every 200 ms since the last reset, in bytes. */
  peakRss: number;
  peakHeapUsed: number;
  rss: number;
  heapUsed: number;
  /** `process.resourceUsage().maxRSS` (kernel high-water mark over the process's life), in bytes. */
  maxRss: number;
}

export type ParentMessage = { type: 'stats'; resetPeak?: boolean } | { type: 'stop' };
export type ChildMessage = { type: 'ready' } | WorkerStats | { type: 'error'; message: string };

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`workerProcess: ${name} is not set`);
  return value;
}

function send(message: ChildMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  let peakRss = 0;
  let peakHeapUsed = 0;
  const sample = () => {
    const { rss, heapUsed } = process.memoryUsage();
    peakRss = Math.max(peakRss, rss);
    peakHeapUsed = Math.max(peakHeapUsed, heapUsed);
    return { rss, heapUsed };
  };
  sample();
  const sampler = setInterval(sample, 200);

  const connection = await NativeConnection.connect({ address: required('BENCH_TEMPORAL_ADDRESS') });
  // Payloads are encrypted as in production: the codec's cost is part of what is measured.
  const { dataConverter } = payloadEncryption({
    PAYLOAD_ENCRYPTION_KEYS: required('BENCH_PAYLOAD_ENCRYPTION_KEYS'),
  });
  const trivialQueue = process.env.BENCH_TRIVIAL_TASK_QUEUE;
  const workers = trivialQueue
    ? await Worker.create({
        connection,
        namespace: 'default',
        taskQueue: trivialQueue,
        workflowBundle: { codePath: required('BENCH_TRIVIAL_BUNDLE') },
        dataConverter,
      })
    : await serviceWorkers(connection, dataConverter);
  const running = workers.run();

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stats') {
      const { rss, heapUsed } = sample();
      send({
        type: 'stats',
        peakRss,
        peakHeapUsed,
        rss,
        heapUsed,
        maxRss: process.resourceUsage().maxRSS * 1024,
      });
      if (message.resetPeak) {
        peakRss = rss;
        peakHeapUsed = heapUsed;
      }
    } else if (message.type === 'stop') {
      workers.shutdown();
    }
  });
  send({ type: 'ready' });
  await running;
  clearInterval(sampler);
  await connection.close();
  process.disconnect?.();
}

/** The production workers (`createDowngradeWorkers`) with their own store, simulator client and state signer. */
async function serviceWorkers(
  connection: NativeConnection,
  dataConverter: ReturnType<typeof payloadEncryption>['dataConverter'],
): Promise<{ run(): Promise<void>; shutdown(): void }> {
  const database = await openDatabase(required('BENCH_DATABASE_URL'));
  const stores = createStores(database, Keyring.parse(required('BENCH_CREDENTIAL_KEYS')));
  // Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT is set, as in production (the exporter reads it too).
  const tracing = setupTracing({ otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
  const stateSigner = new StateSigner(required('BENCH_STATE_SECRET'));
  const simulatorUrl = required('BENCH_SIMULATOR_URL');
  const cronofy = new CronofyClient({
    clientId: required('BENCH_CLIENT_ID'),
    clientSecret: required('BENCH_CLIENT_SECRET'),
    hosts: { api: simulatorUrl, app: simulatorUrl },
  });
  const workers = await createDowngradeWorkers({
    connection,
    namespace: 'default',
    taskQueue: required('BENCH_TASK_QUEUE'),
    workflowBundle: { codePath: required('BENCH_WORKFLOW_BUNDLE') },
    cronofyCallsPerSecond: Number(required('BENCH_CRONOFY_CALLS_PER_SECOND')),
    cachedWorkflows: process.env.BENCH_CACHED_WORKFLOWS
      ? Number(process.env.BENCH_CACHED_WORKFLOWS)
      : undefined,
    dataConverter,
    workflowSpanSink: tracing.workflowSpanSink,
    deps: {
      ...stores,
      cronofy,
      stateSigner,
      redirectUri: required('BENCH_REDIRECT_URI'),
      serviceAccountCallbackUrl: required('BENCH_SERVICE_ACCOUNT_CALLBACK_URL'),
    },
  });
  return {
    run: () =>
      workers
        .run()
        .finally(() => tracing.shutdown())
        .finally(() => database.close()),
    shutdown: () => workers.shutdown(),
  };
}

main().catch((error: unknown) => {
  send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  console.error(error);
  process.exit(1);
});
