// What bench/enterprise.ts reads from a run: the Cronofy calls' timeline, the server's requests per user, the
// parent's and children's histories, and the median of repeated runs.
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { enterpriseDowngradeId, enterpriseUserDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import {
  actionsTable,
  clientCount,
  costLine,
  countRunsByType,
  describeServerActions,
  emptyCount,
  medianCount,
  totalActions,
  type ActionCount,
  type ClientCalls,
  type GroupCount,
} from './actions.js';
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
  /** Temporal Cloud's billable actions of the domain's downgrade (`--actions`), and their total per user. */
  actions?: DomainActions;
  actionsPerUser?: number;
}

/** What a domain's downgrade cost in billable actions: its runs' histories, and the calls no history shows. */
export interface DomainActions {
  /** Every workflow type the run left on the server (the yardstick's aside), counted from its histories. */
  groups: GroupCount[];
  /** Queries and updates the service's own clients sent (the callback server's). */
  service: ClientCalls;
  /** Queries and updates the benchmark sent to follow the run (left out of the count). */
  bench: ClientCalls;
  /** The dev server's own `action` counter, from the start to the result, by action type. */
  server: Record<string, number>;
  /** Seconds spent fetching and counting the histories. */
  countS: number;
}

/** The trivial yardstick's workflows (bench/trivialWorkflows.ts): not the downgrade's. */
const YARDSTICK_TYPES = ['trivialParent', 'trivialChild', 'signalSink'];

/** Counts the actions of every run on the server but the yardstick's; users' runs from `sample` of them. */
export async function countDomainActions(
  env: TestWorkflowEnvironment,
  sample: number,
  calls: Omit<DomainActions, 'groups' | 'countS'>,
): Promise<DomainActions> {
  const began = Date.now();
  const groups = await countRunsByType(env.client, { sample, skipTypes: YARDSTICK_TYPES });
  return { ...calls, groups, countS: (Date.now() - began) / 1000 };
}

/** The parts of a domain's cost, each its whole count; the callback server's client-side calls last. */
function actionParts(actions: DomainActions): Array<{ label: string; count: ActionCount }> {
  return [
    ...actions.groups.map((g) => ({
      label: `${g.type} (${g.runs} run${g.runs === 1 ? '' : 's'}${g.sampled < g.runs ? `, ${g.sampled} counted` : ''})`,
      count: g.count,
    })),
    { label: 'callback server (queries)', count: clientCount(actions.service) },
  ];
}

export function actionsPerUser(actions: DomainActions, users: number): number {
  return actionParts(actions).reduce((sum, part) => sum + totalActions(part.count), 0) / users;
}

/** The actions table of one run: by kind and by workflow type, per user; then the cost and the cross-checks. */
export function describeActions(actions: DomainActions, users: number): string {
  const parts = actionParts(actions);
  const lines = [
    actionsTable(
      parts.map((p) => ({ ...p, per: users })),
      'user',
    ),
    '',
    costLine(actionsPerUser(actions, users), 'user'),
    '',
    `Histories as the server stores them: ${actions.groups
      .map((g) => `${g.type} ${fmt(g.count.historyBytes / g.runs / 1024, 1)} KiB a run (${g.runs})`)
      .join(', ')}.`,
    `Left out: the benchmark's own queries to follow the run (${describeCalls(actions.bench)}); ` +
      `histories counted in ${fmt(actions.countS, 1)} s.`,
    `The dev server's own \`action\` counter from the start to the result (a cross-check, not Cloud's bill): ` +
      describeServerActions(actions.server, users, 'user'),
  ];
  return lines.join('\n');
}

const describeCalls = (calls: ClientCalls) => {
  const entries = Object.entries(calls.queries);
  return entries.length ? entries.map(([name, n]) => `${name} ${n}`).join(', ') : 'none';
};

/** A part's label without its run count ("enterpriseUserDowngrade (1000 runs)"): the same in every run. */
const RUN_COUNT = / \(\d+ runs?[^)]*\)$/;

/** The median over runs of each kind per user, by part; parts matched by workflow type. */
export function describeMedianActions(runs: RunResult[]): string | undefined {
  const counted = runs.filter((r) => r.actions);
  if (counted.length === 0) return undefined;
  const labels = new Set(
    counted.flatMap((r) => actionParts(r.actions!).map((p) => p.label.replace(RUN_COUNT, ''))),
  );
  const parts = [...labels].map((label) => ({
    label,
    per: 1,
    count: medianCount(
      counted.map((r) => ({
        count:
          actionParts(r.actions!).find((p) => p.label.replace(RUN_COUNT, '') === label)?.count ??
          emptyCount(),
        per: r.users,
      })),
    ),
  }));
  const perUser = middle(counted.map((r) => actionsPerUser(r.actions!, r.users)));
  return [
    actionsTable(parts, 'user'),
    '',
    `Median of ${counted.length} runs (runs: ${counted
      .map((r) => fmt(actionsPerUser(r.actions!, r.users), 3))
      .join(', ')} actions per user). ${costLine(perUser, 'user')}`,
    '',
    ...counted.map(
      (r, i) =>
        `Run ${i + 1}, the dev server's own \`action\` counter (a cross-check, not Cloud's bill; the benchmark's ` +
        `queries included): ${describeServerActions(r.actions!.server, r.users, 'user')}`,
    ),
  ].join('\n');
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
    actionsPerUser: m((r) => r.actionsPerUser),
  };
}
