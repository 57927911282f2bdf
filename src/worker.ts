import { failureConverterPath } from './codec/payloadEncryption.js';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Worker,
  type WorkflowBundle,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivitiesByQueue } from './activities/index.js';
import type { ActivityDeps } from './activities/deps.js';
import {
  discardWorkflowSpans,
  tracingActivityInterceptors,
  tracingWorkflowInterceptorModule,
  type WorkflowSpanSink,
} from './observability/tracing.js';
import { cronofyTaskQueue } from './workflows/definitions.js';
import { modulePath, runningFromSource } from './modulePath.js';

export const workflowsPath = modulePath('./workflows/index', import.meta.url);

/**
 * Where `npm run build` writes the workflow bundles, next to the compiled code: `dist/workflow-bundle.js`, and
 * `dist/workflow-bundle.traced.js` for workers that trace (scripts/bundle-workflows.ts writes both).
 */
export function builtWorkflowBundlePath(options: { tracing: boolean }): string {
  const dist = new URL(runningFromSource ? '../dist/' : '../', import.meta.url);
  return fileURLToPath(new URL(`workflow-bundle${options.tracing ? '.traced' : ''}.js`, dist));
}

export interface DowngradeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Server-enforced across all workers of the Cronofy task queue; keeps Cronofy calls under its rate limit. */
  cronofyCallsPerSecond: number;
  /** Workflow runs kept in memory between tasks (default DEFAULT_CACHED_WORKFLOWS). */
  cachedWorkflows?: number;
  /**
   * Encodes and decodes every payload (the payload encryption, see codec/payloadEncryption.ts); it must be
   * the client's.
   */
  dataConverter: NonNullable<WorkerOptions['dataConverter']>;
  /**
   * A prebuilt bundle (WORKFLOW_BUNDLE_PATH; tests build it once). It must have been built with the same `tracing`
   * choice: `bundleWorkflows({ tracing: true })` when a span sink is given. Without one, `defaultWorkflowBundle`.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /**
   * Where workflow spans go (`setupTracing().workflowSpanSink`). Without one, tracing is off: the workflow bundle
   * carries no OpenTelemetry interceptors and activities no spans.
   */
  workflowSpanSink?: WorkflowSpanSink;
}

/**
 * The worker's workflow cache, sized with its heap for a container of 512 MiB (docker-compose.yml's worker): the
 * SDK's own default grows with the heap limit (thousands of runs on a large machine), and with it the worker's
 * memory. It holds a domain's whole window of users in flight (500 by default), so their callbacks find
 * their runs in memory: a run pushed out replays its history first, which makes its next workflow task several
 * times longer. A person who waits for days is pushed out and holds no memory in the worker.
 */
export const DEFAULT_CACHED_WORKFLOWS = 500;

export interface DowngradeWorkers {
  run(): Promise<void>;
  shutdown(): void;
}

/**
 * Bundles the workflow code once (webpack), logging only problems. OpenTelemetry's workflow interceptors are in
 * the bundle only with `tracing`: they run on every activation of every workflow, spans or no spans, so an
 * untraced worker must not carry them. They add headers and sink calls, never a command, so a history recorded
 * with tracing replays without it and the other way round (test/replay.test.ts replays the fixtures with both).
 */
export function bundleWorkflows(options: { tracing?: boolean } = {}): ReturnType<typeof bundleWorkflowCode> {
  return bundleWorkflowCode({
    workflowsPath,
    failureConverterPath,
    workflowInterceptorModules: options.tracing ? [tracingWorkflowInterceptorModule] : [],
    logger: new DefaultLogger('WARN'),
  });
}

/** What only a traced bundle holds: OpenTelemetry's workflow interceptors. */
const TRACED_BUNDLE_MARKER = 'interceptors-opentelemetry/lib/workflow-interceptors';

/**
 * A bundle written by `bundleWorkflows` ahead of time (scripts/bundle-workflows.ts). Refused when it was built for
 * the other `tracing` choice: a traced worker on an untraced bundle would make no workflow spans, silently.
 */
export function prebuiltWorkflowBundle(path: string, options: { tracing: boolean }): WorkflowBundle {
  const code = readFileSync(path, 'utf8');
  assertBundleTracing(path, code, options);
  return { code };
}

function assertBundleTracing(path: string, code: string, options: { tracing: boolean }): void {
  if (code.includes(TRACED_BUNDLE_MARKER) !== options.tracing) {
    throw new Error(
      `${path} was bundled ${options.tracing ? 'without' : 'with'} tracing, but tracing is ${options.tracing ? 'on' : 'off'}: ` +
        `bundle it again${options.tracing ? ' with --tracing' : ' without --tracing'}`,
    );
  }
}

/**
 * The bundle of a worker given none. From the compiled `dist/` (the image, `node dist/src/main.js`): the one
 * `npm run build` wrote (`builtWorkflowBundlePath`), so the worker starts without webpack, and refuses to start
 * without it rather than bundle in production. From source (`npm start`, tsx): bundled now (webpack, about 2 s of
 * CPU), from the code as it is: a development start needs no `npm run build` (tsc, then both bundles) first.
 */
export async function defaultWorkflowBundle(options: {
  tracing: boolean;
}): Promise<NonNullable<WorkerOptions['workflowBundle']>> {
  if (runningFromSource) return bundleWorkflows(options);
  const path = builtWorkflowBundlePath(options);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: \`npm run build\` writes it next to the compiled code (or set WORKFLOW_BUNDLE_PATH)`,
    );
  }
  assertBundleTracing(path, readFileSync(path, 'utf8'), options);
  // By path, the SDK takes the bundle's inline source map as it is, where a bundle given as code has it re-encoded.
  return { codePath: path };
}

/** The sinks a traced bundle's workflow code calls; a replayer registers them too (dropping the spans). */
export function workflowSinks(workflowSpanSink: WorkflowSpanSink = discardWorkflowSpans) {
  return { exporter: workflowSpanSink };
}

/**
 * Two workers in one process: workflows and the service's own activities on the main task queue, and the
 * activities that call Cronofy on a second queue that the Temporal server rate-limits for all workers together.
 */
export async function createDowngradeWorkers(options: DowngradeWorkerOptions): Promise<DowngradeWorkers> {
  const activities = createActivitiesByQueue(options.deps);
  const tracing = options.workflowSpanSink !== undefined;
  const common = {
    connection: options.connection,
    namespace: options.namespace,
    dataConverter: options.dataConverter,
    // On shutdown (SIGTERM) running activities get this long to finish before they are cancelled and retried
    // elsewhere: a Cronofy call takes well under a second.
    shutdownGraceTime: '10s',
    // RunActivity spans, children of the workflow's StartActivity.
    ...(tracing ? { interceptors: { activity: tracingActivityInterceptors() } } : {}),
  };
  const main = await Worker.create({
    ...common,
    taskQueue: options.taskQueue,
    activities: activities.service,
    workflowBundle: options.workflowBundle ?? (await defaultWorkflowBundle({ tracing })),
    maxCachedWorkflows: options.cachedWorkflows ?? DEFAULT_CACHED_WORKFLOWS,
    ...(tracing ? { sinks: workflowSinks(options.workflowSpanSink) } : {}),
  });
  const cronofyCalls = await Worker.create({
    ...common,
    taskQueue: cronofyTaskQueue(options.taskQueue),
    activities: activities.cronofy,
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
