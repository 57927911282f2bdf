import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities/index.js';
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
}

export interface DowngradeWorkers {
  run(): Promise<void>;
  shutdown(): void;
}

/** Bundles the workflow code once (webpack), logging only problems. */
export function bundleWorkflows(): ReturnType<typeof bundleWorkflowCode> {
  return bundleWorkflowCode({ workflowsPath, failureConverterPath, logger: new DefaultLogger('WARN') });
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
