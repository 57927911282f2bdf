import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities/index.js';

export const workflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

export interface DowngradeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Server-enforced across all workers of the task queue; keeps Cronofy calls under its rate limit. */
  activitiesPerSecond: number;
  /** A prebuilt bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** Bundles the workflow code once (webpack), logging only problems. */
export function bundleWorkflows(): ReturnType<typeof bundleWorkflowCode> {
  return bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
}

export async function createDowngradeWorker(options: DowngradeWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle ?? (await bundleWorkflows()),
    activities: createActivities(options.deps),
    maxTaskQueueActivitiesPerSecond: options.activitiesPerSecond,
  });
}
