// What bench/enterprise.ts reads from a run: the Cronofy calls' timeline, the server's requests per user, the
// parent's and children's histories, and the median of repeated runs.
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { enterpriseDowngradeId, enterpriseUserDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import {
  fmt,
  log,
  middle,
  sum,
  medianDistribution,
  type Distribution,
  type ServerRequests,
} from './support.js';

const CHILD_HISTORY_SAMPLE = 20;

export interface RunResult {
  users: number;
  outcome: string;
  wallS: number;
  usersPhaseS: number;
  floorS?: number;
  calls: number;
  callsTruncated: boolean;
  rejected429: number;
  runs: number;
  longestParentEvents: number;
  longestParentBytes: number;
  longestChildEvents: number;
  /** How long the worker held each of the parent's workflow tasks (started → completed), over all its runs. */
  parentTaskMs: Distribution;
  /** The SDK's "Workflow task duration exceeded 5 seconds" warnings (TMPRL1104) in the worker's output. */
  slowTaskWarnings: number;
  /** The server's frontend requests and persistence requests from the start to the result, per user. */
  frontendPerUser: number;
  persistencePerUser: number;
  peakRssMiB: number;
  peakHeapMiB: number;
  endRssMiB: number;
  completed: number;
  ok: boolean;
  trivialPerS?: number;
  reached?: string;
}

/**
 * Where a rate-limited run spends its time beyond the floor: the Cronofy calls before the administrator's
 * consent, the idle start of the users phase, the calls per second while they flow, and the tail after the last.
 */
export function describeCallTimeline(
  requests: readonly { endpoint: string; at: string }[],
  started: number,
  approved: number,
  finished: number,
): string {
  const s = (ms: number) => fmt((ms - started) / 1000, 1);
  const during = requests.map((r) => Date.parse(r.at)).filter((at) => at >= approved && at <= finished);
  if (during.length < 2) return `Cronofy calls: ${during.length} in the users phase`;
  const first = during[0]!;
  const last = during.at(-1)!;
  let widestGapMs = 0;
  for (let i = 1; i < during.length; i++) widestGapMs = Math.max(widestGapMs, during[i]! - during[i - 1]!);
  const byEndpoint = new Map<string, number>();
  for (const r of requests) byEndpoint.set(r.endpoint, (byEndpoint.get(r.endpoint) ?? 0) + 1);
  return (
    `Cronofy calls: approved at ${s(approved)} s, first call after it at ${s(first)} s, last at ${s(last)} s, ` +
    `finished at ${s(finished)} s; ${fmt((during.length - 1) / ((last - first) / 1000), 2)} calls/s between; ` +
    `widest gap ${widestGapMs} ms; by endpoint ${JSON.stringify(Object.fromEntries(byEndpoint))}`
  );
}

/** The server's requests between two scrapes, per user. */
export function perUser(after: ServerRequests, before: ServerRequests, users: number) {
  const delta = (kind: keyof ServerRequests) => (sum(after[kind]) - sum(before[kind])) / users;
  return { frontend: delta('frontend'), persistence: delta('persistence') };
}

/** Every run of the parent, and a sample of children spread over the domain: the longest history of each. */
export async function longestHistories(
  env: TestWorkflowEnvironment,
  domain: string,
  captureId: string,
  users: number,
) {
  const parentId = enterpriseDowngradeId(domain);
  let parentEvents = 0;
  let parentBytes = 0;
  const parentTaskMs: number[] = [];
  for await (const execution of env.client.workflow.list({ query: `WorkflowId = '${parentId}'` })) {
    const history = await env.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    parentEvents = Math.max(parentEvents, history.events?.length ?? 0);
    parentTaskMs.push(...workflowTaskDurations(history));
    try {
      log(`parent run ${execution.runId.slice(0, 8)}: ${describeTimings(history)}`);
    } catch (error) {
      log(`parent timings: ${String(error)}`);
    }
    parentBytes = Math.max(
      parentBytes,
      proto.temporal.api.history.v1.History.encode(history).finish().length,
    );
  }
  let childEvents = 0;
  const sample = Math.min(CHILD_HISTORY_SAMPLE, users);
  for (let i = 0; i < sample; i += 1) {
    const position = Math.floor((i * (users - 1)) / Math.max(1, sample - 1));
    const history = await env.client.workflow
      .getHandle(enterpriseUserDowngradeId(parentId, captureId, position))
      .fetchHistory()
      .catch(() => undefined);
    childEvents = Math.max(childEvents, history?.events?.length ?? 0);
  }
  return { parentEvents, parentBytes, childEvents, parentTaskMs };
}

type History = Awaited<
  ReturnType<ReturnType<TestWorkflowEnvironment['client']['workflow']['getHandle']>['fetchHistory']>
>;

const eventMs = (time: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  Number(time?.seconds ?? 0) * 1000 + (time?.nanos ?? 0) / 1e6;

/** How long the worker held each workflow task of a history: from its started event to its completed one. */
function workflowTaskDurations(history: History): number[] {
  const startedAt = new Map<string, number>();
  const durations: number[] = [];
  for (const event of history.events ?? []) {
    if (event.workflowTaskStartedEventAttributes)
      startedAt.set(String(event.eventId), eventMs(event.eventTime));
    const startedId = event.workflowTaskCompletedEventAttributes?.startedEventId;
    const from = startedId == null ? undefined : startedAt.get(String(startedId));
    if (from !== undefined) durations.push(eventMs(event.eventTime) - from);
  }
  return durations;
}

/**
 * Where a parent run's time went, from its history: how long its workflow tasks, activities and child starts
 * waited (scheduled → started) and ran (started → closed), and how far apart its batches started.
 */
function describeTimings(history: History): string {
  const ms = eventMs;
  const scheduled = new Map<string, { at: number; kind: string }>();
  const started = new Map<string, number>();
  const waits = new Map<string, number[]>();
  const runs = new Map<string, number[]>();
  const add = (map: Map<string, number[]>, kind: string, value: number) =>
    map.set(kind, [...(map.get(kind) ?? []), value]);
  const batchStarts: number[] = [];
  for (const event of history.events ?? []) {
    const at = ms(event.eventTime);
    const id = String(event.eventId);
    if (event.workflowTaskScheduledEventAttributes) scheduled.set(id, { at, kind: 'workflow task' });
    const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (activity) {
      scheduled.set(id, { at, kind: activity });
      if (activity === 'startUsers' || activity === 'loadUserPage') batchStarts.push(at);
    }
    if (event.startChildWorkflowExecutionInitiatedEventAttributes)
      scheduled.set(id, { at, kind: 'start child' });
    const startedOf =
      event.workflowTaskStartedEventAttributes?.scheduledEventId ??
      event.activityTaskStartedEventAttributes?.scheduledEventId;
    if (startedOf != null) {
      const from = scheduled.get(String(startedOf));
      if (from) {
        add(waits, from.kind, at - from.at);
        started.set(String(startedOf), at);
      }
    }
    const childStarted = event.childWorkflowExecutionStartedEventAttributes?.initiatedEventId;
    if (childStarted != null) {
      const from = scheduled.get(String(childStarted));
      if (from) add(waits, from.kind, at - from.at);
    }
    const closedOf =
      event.workflowTaskCompletedEventAttributes?.scheduledEventId ??
      event.activityTaskCompletedEventAttributes?.scheduledEventId;
    if (closedOf != null) {
      const from = scheduled.get(String(closedOf));
      const startedAt = started.get(String(closedOf));
      if (from && startedAt !== undefined) add(runs, from.kind, at - startedAt);
    }
  }
  const mean = (values: number[] | undefined) =>
    values?.length ? fmt(values.reduce((a, b) => a + b, 0) / values.length, 0) : '–';
  const kinds = [...new Set([...waits.keys()])];
  const gaps = batchStarts.slice(1).map((at, i) => at - batchStarts[i]!);
  return (
    kinds
      .map(
        (kind) =>
          `${kind} ×${waits.get(kind)!.length} waited ${mean(waits.get(kind))} ms, ran ${mean(runs.get(kind))} ms`,
      )
      .join('; ') + `; ${batchStarts.length} batches, ${mean(gaps)} ms apart`
  );
}

export function median(runs: RunResult[]): RunResult {
  const first = runs[0]!;
  const m = (pick: (r: RunResult) => number | undefined) => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined);
    return values.length ? middle(values) : undefined;
  };
  return {
    ...first,
    outcome: runs.every((r) => r.outcome === first.outcome) ? first.outcome : 'mixed',
    wallS: m((r) => r.wallS)!,
    usersPhaseS: m((r) => r.usersPhaseS)!,
    floorS: m((r) => r.floorS),
    calls: m((r) => r.calls)!,
    rejected429: m((r) => r.rejected429)!,
    runs: m((r) => r.runs)!,
    longestParentEvents: Math.max(...runs.map((r) => r.longestParentEvents)),
    longestParentBytes: Math.max(...runs.map((r) => r.longestParentBytes)),
    longestChildEvents: Math.max(...runs.map((r) => r.longestChildEvents)),
    parentTaskMs: medianDistribution(runs.map((r) => r.parentTaskMs)),
    slowTaskWarnings: m((r) => r.slowTaskWarnings)!,
    frontendPerUser: m((r) => r.frontendPerUser)!,
    persistencePerUser: m((r) => r.persistencePerUser)!,
    peakRssMiB: m((r) => r.peakRssMiB)!,
    peakHeapMiB: m((r) => r.peakHeapMiB)!,
    endRssMiB: m((r) => r.endRssMiB)!,
    completed: m((r) => r.completed)!,
    ok: runs.every((r) => r.ok),
    trivialPerS: m((r) => r.trivialPerS),
  };
}
