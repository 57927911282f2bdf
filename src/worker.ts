import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities/index.js';
import {
  discardWorkflowSpans,
  tracingActivityInterceptors,
  tracingWorkflowInterceptorModule,
  type WorkflowSpanSink,
} from './observability/tracing.js';
import { cronofyTaskQueue } from './workflows/definitions.js';

export const workflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));
/** Encodes failure messages so that the payload codec encrypts them (see codec/failureConverter.ts). */
export const failureConverterPath = fileURLToPath(new URL('./codec/failureConverter.ts', import.meta.url));

export interface DowngradeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Server-enforced across all workers of the Cronofy task queue; keeps Cronofy calls under its rate limit. */
  cronofyCallsPerSecond: number;
  /**
   * Encodes and decodes every payload (the payload encryption, see payloadEncryption in services.ts); it must be
   * the client's.
   */
  dataConverter: NonNullable<WorkerOptions['dataConverter']>;
  /** A prebuilt bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Where workflow spans go (`setupTracing().workflowSpanSink`); dropped without one. */
  workflowSpanSink?: WorkflowSpanSink;
}

export interface DowngradeWorkers {
  run(): Promise<void>;
  shutdown(): void;
}

/**
 * Bundles the workflow code once (webpack), logging only problems. OpenTelemetry's workflow interceptors are
 * always in the bundle (tracing on or off), so the code that runs is the code test/replay.test.ts replays.
 */
export function bundleWorkflows(): ReturnType<typeof bundleWorkflowCode> {
  return bundleWorkflowCode({
    workflowsPath,
    failureConverterPath,
    workflowInterceptorModules: [tracingWorkflowInterceptorModule],
    logger: new DefaultLogger('WARN'),
  });
}

/** The sinks the bundle's workflow code calls; a replayer registers them too (dropping the spans). */
export function workflowSinks(workflowSpanSink: WorkflowSpanSink = discardWorkflowSpans) {
  return { exporter: workflowSpanSink };
}

/**
 * Two workers in one process: workflows and the service's own activities on the main task queue, and the
 * activities that call Cronofy on a second queue that the Temporal server rate-limits for all workers together.
 */
export async function createDowngradeWorkers(options: DowngradeWorkerOptions): Promise<DowngradeWorkers> {
  const activities = createActivities(options.deps);
  const common = {
    connection: options.connection,
    namespace: options.namespace,
    activities,
    dataConverter: options.dataConverter,
    // On shutdown (SIGTERM) running activities get this long to finish before they are cancelled and retried
    // elsewhere: a Cronofy call takes well under a second.
    shutdownGraceTime: '10s',
    // RunActivity spans, children of the workflow's StartActivity; no-ops unless tracing is set up.
    interceptors: { activity: tracingActivityInterceptors() },
    sinks: workflowSinks(options.workflowSpanSink),
  };
  const main = await Worker.create({
    ...common,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle ?? (await bundleWorkflows()),
  });
  const cronofyCalls = await Worker.create({
    ...common,
    taskQueue: cronofyTaskQueue(options.taskQueue),
    maxTaskQueueActivitiesPerSecond: options.cronofyCallsPerSecond,
  });
  const workers = [main, cronofyCalls];
  return {
    run: async () => {
      await Promise.all(workers.map((worker) => worker.run()));
    },
    shutdown: () => workers.forEach((worker) => worker.shutdown()),
  };
}
