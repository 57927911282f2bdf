/**
 * Temporal Cloud's billable actions, counted from the histories of a run's workflows, by Temporal's published
 * definition (docs.temporal.io/cloud/actions, summarised with the list price in ../shared/temporal.md), and what a
 * count costs at the list price. Shared by bench/enterprise.ts and bench/individualActions.ts.
 *
 * Counted from each history, one action each for:
 * - a workflow started (client start, a start by an activity's client, continue-as-new, retry, cron; a child's
 *   start); a child start also costs its parent one (StartChildWorkflowExecutionInitiated: "intent + start");
 *   search attributes given at start are free, and a start de-duplicated by workflow id leaves no history;
 * - each UpsertWorkflowSearchAttributes (several attributes in one command: one), except one that only sets
 *   `TemporalChangeVersion`; each WorkflowExecutionOptionsUpdated;
 * - each activity scheduled, and each retry (`ActivityTaskStarted.attempt - 1`);
 * - local activities: one per workflow task that recorded markers (all its markers together), plus each retry of a
 *   local activity begun in a later workflow task (`WorkflowTaskCompleted.meteringMetadata
 *   .nonfirstLocalActivityExecutionAttempts`), plus each workflow-task heartbeat (a task completed with no command
 *   and at once followed by the next one scheduled, which is what the SDK's heartbeat of a long local activity
 *   leaves; an update arriving during a task leaves the same pattern, so this is an upper bound);
 * - each timer started (`condition(fn, timeout)` and `sleep` included);
 * - each signal received (WorkflowExecutionSignaled; a signal sent by another workflow is billed there, on the
 *   receiving side, not on the sender's SignalExternalWorkflowExecutionInitiated; a signal-with-start that started
 *   the run is one action with its start);
 * - each update accepted (WorkflowExecutionUpdateAccepted);
 * - a reset (WorkflowTaskFailed with cause RESET_WORKFLOW); a Nexus operation scheduled or its cancel requested.
 *
 * Billed but left by no history, so counted elsewhere or left out (see `clientCalls`): queries (each one a worker
 * answers, the Temporal UI's call-stack view included), rejected updates, activity heartbeats that reach the server,
 * schedules, exports.
 */
import type { Client, WorkflowClientInterceptor } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { fmt, mapLimit } from './support.js';

type History = proto.temporal.api.history.v1.IHistory;

/** Temporal Cloud's list price per million actions, by monthly volume (../shared/temporal.md). */
export const PRICE_PER_MILLION = { first5M: 50, above200M: 25 } as const;

/** The kinds of billable action a history shows, in the order the tables list them. */
export const ACTION_KINDS = [
  'workflow start',
  'continue-as-new start',
  'child workflow start (intent + start)',
  'search attribute upsert',
  'workflow options updated',
  'activity',
  'activity retry',
  'local activities (workflow task with markers)',
  'local activity retry (later task)',
  'workflow-task heartbeat (upper bound)',
  'timer',
  'signal received',
  'update accepted',
  'reset',
  'nexus operation',
  'query (counted by the client)',
  'update rejected (counted by the client)',
] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

/** One history's (or several histories') actions: by kind, with the detail of what each kind was. */
export interface ActionCount {
  /** Histories (runs) counted. */
  runs: number;
  byKind: Partial<Record<ActionKind, number>>;
  /** Per kind, by name: the activity's or local activity's type, the signal's, update's or attribute's name. */
  detail: Partial<Record<ActionKind, Record<string, number>>>;
  /** Events seen that cost nothing by the definition, but are worth knowing of (a signal sent to another run). */
  notes: Record<string, number>;
  /** The histories' size as the server stores them (protobuf), for the storage estimate. */
  historyBytes: number;
  events: number;
}

export function emptyCount(): ActionCount {
  return { runs: 0, byKind: {}, detail: {}, notes: {}, historyBytes: 0, events: 0 };
}

export const totalActions = (count: ActionCount) =>
  Object.values(count.byKind).reduce<number>((sum, n) => sum + (n ?? 0), 0);

const CHANGE_VERSION = 'TemporalChangeVersion';
const RESET_CAUSE =
  proto.temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW;

/** The billable actions of one run's history. */
export function countHistory(history: History): ActionCount {
  const count = emptyCount();
  const add = (kind: ActionKind, name?: string, n = 1) => {
    if (n <= 0) return;
    count.byKind[kind] = (count.byKind[kind] ?? 0) + n;
    if (name !== undefined) {
      const names = (count.detail[kind] ??= {});
      names[name] = (names[name] ?? 0) + n;
    }
  };
  const note = (what: string) => (count.notes[what] = (count.notes[what] ?? 0) + 1);
  const events = history.events ?? [];
  count.runs = 1;
  count.events = events.length;
  count.historyBytes = proto.temporal.api.history.v1.History.encode(history).finish().length;

  /** Workflow tasks (by their completed event's id) that recorded markers, with the markers' names. */
  const markerTasks = new Map<string, string[]>();
  const activityTypes = new Map<string, string>();
  let startedBySignalWithStart = false;
  events.forEach((event, index) => {
    const started = event.workflowExecutionStartedEventAttributes;
    if (started) {
      const type = started.workflowType?.name ?? '?';
      if (started.parentWorkflowExecution)
        add('child workflow start (intent + start)', `${type} (its start)`);
      else if (started.continuedExecutionRunId) add('continue-as-new start', type);
      else add('workflow start', type);
      // Signal-with-start: the start's own signal is the event right after it, before any workflow task.
      startedBySignalWithStart = Boolean(events[index + 1]?.workflowExecutionSignaledEventAttributes);
    }
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (child) add('child workflow start (intent + start)', `${child.workflowType?.name ?? '?'} (intent)`);
    const upsert = event.upsertWorkflowSearchAttributesEventAttributes;
    if (upsert) {
      const keys = Object.keys(upsert.searchAttributes?.indexedFields ?? {}).sort();
      if (keys.length === 1 && keys[0] === CHANGE_VERSION) note('TemporalChangeVersion upsert (free)');
      else add('search attribute upsert', keys.join('+'));
    }
    if (event.workflowExecutionOptionsUpdatedEventAttributes) add('workflow options updated', 'options');
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const type = scheduled.activityType?.name ?? '?';
      activityTypes.set(String(event.eventId), type);
      add('activity', type);
    }
    const activityStarted = event.activityTaskStartedEventAttributes;
    if (activityStarted) {
      const type = activityTypes.get(String(activityStarted.scheduledEventId)) ?? '?';
      add('activity retry', type, (activityStarted.attempt ?? 1) - 1);
    }
    const marker = event.markerRecordedEventAttributes;
    if (marker) {
      const task = String(marker.workflowTaskCompletedEventId);
      markerTasks.set(task, [...(markerTasks.get(task) ?? []), markerName(marker)]);
    }
    const completed = event.workflowTaskCompletedEventAttributes;
    if (completed) {
      add(
        'local activity retry (later task)',
        'retry',
        completed.meteringMetadata?.nonfirstLocalActivityExecutionAttempts ?? 0,
      );
      if (events[index + 1]?.workflowTaskScheduledEventAttributes)
        add('workflow-task heartbeat (upper bound)', 'task completed, next at once');
    }
    if (event.timerStartedEventAttributes) add('timer', 'timer');
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled) {
      const withStart =
        startedBySignalWithStart && events[index - 1]?.workflowExecutionStartedEventAttributes;
      if (withStart) note(`signal-with-start's signal (free: one action with the start)`);
      else add('signal received', signaled.signalName ?? '?');
    }
    if (event.signalExternalWorkflowExecutionInitiatedEventAttributes) {
      note('signal sent to another run (billed where it is received)');
    }
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted) add('update accepted', accepted.acceptedRequest?.input?.name ?? '?');
    if (event.workflowTaskFailedEventAttributes?.cause === RESET_CAUSE) add('reset', 'reset');
    if (event.nexusOperationScheduledEventAttributes) add('nexus operation', 'scheduled');
    if (event.nexusOperationCancelRequestedEventAttributes) add('nexus operation', 'cancel requested');
  });
  for (const names of markerTasks.values()) {
    add('local activities (workflow task with markers)', [...new Set(names)].sort().join('+'));
  }
  return count;
}

/**
 * A marker's name for the tables: a local activity's type (its `data` is the SDK's plain bookkeeping, not
 * encrypted: see harness/histories.ts), otherwise the marker's own name.
 */
function markerName(marker: proto.temporal.api.history.v1.IMarkerRecordedEventAttributes): string {
  const name = marker.markerName ?? '?';
  const data = marker.details?.data?.payloads?.[0];
  if (name !== 'core_local_activity' || !data) return name;
  try {
    const decoded = defaultPayloadConverter.fromPayload<{ activity_type?: string; activityType?: string }>(
      data,
    );
    return decoded.activity_type ?? decoded.activityType ?? name;
  } catch {
    return name;
  }
}

/** Adds `b` into `a`. */
export function addCount(a: ActionCount, b: ActionCount): ActionCount {
  a.runs += b.runs;
  a.historyBytes += b.historyBytes;
  a.events += b.events;
  for (const [kind, n] of Object.entries(b.byKind) as Array<[ActionKind, number]>) {
    a.byKind[kind] = (a.byKind[kind] ?? 0) + n;
  }
  for (const [kind, names] of Object.entries(b.detail) as Array<[ActionKind, Record<string, number>]>) {
    const into = (a.detail[kind] ??= {});
    for (const [name, n] of Object.entries(names)) into[name] = (into[name] ?? 0) + n;
  }
  for (const [what, n] of Object.entries(b.notes)) a.notes[what] = (a.notes[what] ?? 0) + n;
  return a;
}

/** `count` times `factor` (a sample's count scaled to the whole group). */
export function scaleCount(count: ActionCount, factor: number): ActionCount {
  const scaled = emptyCount();
  addCount(scaled, count);
  const times = (record: Record<string, number>) => {
    for (const key of Object.keys(record)) record[key] = record[key]! * factor;
  };
  scaled.runs *= factor;
  scaled.historyBytes *= factor;
  scaled.events *= factor;
  times(scaled.byKind as Record<string, number>);
  for (const names of Object.values(scaled.detail)) times(names);
  times(scaled.notes);
  return scaled;
}

/** One workflow execution, by id (its latest run) or by run. */
export interface ExecutionRef {
  workflowId: string;
  runId?: string;
}

/**
 * The runs of every execution given, each counted once: an execution given by id alone is its latest run and every
 * run it continued from (followed back through `continuedExecutionRunId`, so a chain's earlier runs are never
 * missed); `concurrency` histories are fetched at a time.
 */
export async function countExecutions(
  client: Client,
  executions: readonly ExecutionRef[],
  options: { concurrency?: number } = {},
): Promise<ActionCount> {
  const seen = new Set<string>();
  const total = emptyCount();
  await mapLimit(executions, options.concurrency ?? 8, async (execution) => {
    let runId = execution.runId;
    for (;;) {
      const history = await client.workflow.getHandle(execution.workflowId, runId).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      // The run's own id when its started event was written (a reset keeps it): each run is counted once.
      const key = `${execution.workflowId}/${started?.originalExecutionRunId ?? runId ?? '?'}`;
      if (seen.has(key)) return;
      seen.add(key);
      addCount(total, countHistory(history));
      // Given by id alone: follow the chain back. Given by run: that run alone (the caller lists every run).
      const previous = started?.continuedExecutionRunId;
      if (execution.runId || !previous) return;
      runId = previous;
    }
  });
  return total;
}

/** Every run a visibility query lists (each continued-as-new run is listed on its own), grouped by workflow type. */
export async function listRuns(client: Client, query?: string): Promise<Map<string, ExecutionRef[]>> {
  const byType = new Map<string, ExecutionRef[]>();
  for await (const execution of client.workflow.list(query ? { query } : {})) {
    const runs = byType.get(execution.type) ?? [];
    runs.push({ workflowId: execution.workflowId, runId: execution.runId });
    byType.set(execution.type, runs);
  }
  return byType;
}

/** `size` of `items`, spread evenly over them (all of them when there are no more). */
export function spread<T>(items: readonly T[], size: number): T[] {
  if (items.length <= size) return [...items];
  return Array.from({ length: size }, (_, i) => items[Math.floor((i * items.length) / size)]!);
}

/** What a group of runs (one workflow type) cost: counted whole, or from an even sample scaled to the group. */
export interface GroupCount {
  type: string;
  /** Runs in the group (all of them, not the sample). */
  runs: number;
  sampled: number;
  count: ActionCount;
}

/**
 * Counts the actions of every run a visibility query lists, by workflow type: groups of more than `sample` runs are
 * counted from `sample` of them spread evenly and scaled to the group (`sample` Infinity: every run).
 */
export async function countRunsByType(
  client: Client,
  options: { query?: string; sample?: number; skipTypes?: readonly string[]; concurrency?: number } = {},
): Promise<GroupCount[]> {
  const groups: GroupCount[] = [];
  for (const [type, runs] of await listRuns(client, options.query)) {
    if (options.skipTypes?.includes(type)) continue;
    const picked = spread(runs, options.sample ?? Infinity);
    const counted = await countExecutions(client, picked, { concurrency: options.concurrency });
    groups.push({
      type,
      runs: runs.length,
      sampled: picked.length,
      count: picked.length === runs.length ? counted : scaleCount(counted, runs.length / picked.length),
    });
  }
  return groups.sort((a, b) => a.type.localeCompare(b.type));
}

/**
 * Client-side counts of what is billed but leaves no history: queries (by name) and updates sent. Put
 * `interceptor` in a client's `interceptors.workflow`.
 */
export function clientCalls() {
  const queries: Record<string, number> = {};
  const updates: Record<string, number> = {};
  const updatesFailed: Record<string, number> = {};
  const interceptor: WorkflowClientInterceptor = {
    async query(input, next) {
      queries[input.queryType] = (queries[input.queryType] ?? 0) + 1;
      return next(input);
    },
    async startUpdate(input, next) {
      updates[input.updateName] = (updates[input.updateName] ?? 0) + 1;
      return next(input).catch((error: unknown) => {
        updatesFailed[input.updateName] = (updatesFailed[input.updateName] ?? 0) + 1;
        throw error;
      });
    },
    async startUpdateWithStart(input, next) {
      updates[input.updateName] = (updates[input.updateName] ?? 0) + 1;
      return next(input);
    },
  };
  return {
    interceptor,
    snapshot: () => ({
      queries: { ...queries },
      updates: { ...updates },
      updatesFailed: { ...updatesFailed },
    }),
  };
}
export type ClientCalls = ReturnType<ReturnType<typeof clientCalls>['snapshot']>;

/** Client-side counts as actions: each query sent (a worker answers it), each update call that failed. */
export function clientCount(calls: ClientCalls): ActionCount {
  const count = emptyCount();
  const put = (kind: ActionKind, names: Record<string, number>) => {
    const n = sumValues(names);
    if (!n) return;
    count.byKind[kind] = n;
    count.detail[kind] = { ...names };
  };
  put('query (counted by the client)', calls.queries);
  put('update rejected (counted by the client)', calls.updatesFailed);
  return count;
}

export const sumValues = (record: Record<string, number | undefined>) =>
  Object.values(record).reduce<number>((sum, n) => sum + (n ?? 0), 0);

/** The Temporal server's own `action` counter (its Prometheus page), by `action_type`: a cross-check. */
export function serverActionCounts(metricsText: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('action{') || !line.includes('namespace="default"')) continue;
    const type = /action_type="([^"]+)"/.exec(line)?.[1] ?? '?';
    counts[type] = (counts[type] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

/** The server's action counter per unit, by type, largest first, and its total. */
export function describeServerActions(counts: Record<string, number>, per: number, unit: string): string {
  const entries = Object.entries(counts).sort(([, a], [, b]) => b - a);
  if (entries.length === 0) return 'none recorded';
  return (
    `${fmt(sumValues(counts) / per, 3)} per ${unit}: ` +
    entries.map(([type, n]) => `${type} ${fmt(n / per, 3)}`).join(', ')
  );
}

export function diffCounts(after: Record<string, number>, before: Record<string, number>) {
  const diff: Record<string, number> = {};
  for (const [key, n] of Object.entries(after)) {
    const d = n - (before[key] ?? 0);
    if (d) diff[key] = d;
  }
  return diff;
}

/** Dollars for `actions` at `pricePerMillion`. */
export const dollars = (actions: number, pricePerMillion: number) => (actions * pricePerMillion) / 1_000_000;

const describeNames = (names: Record<string, number> | undefined) =>
  Object.entries(names ?? {})
    .sort(([, a], [, b]) => b - a)
    .map(([name, n]) => `${name} ${fmt(n, 3)}`)
    .join(', ');

/**
 * A markdown table of actions by kind: one column per part (its count divided by `per`), a total column, and the
 * detail (by name) of the total. `unit` names what `per` counts ("user", "downgrade").
 */
export function actionsTable(
  parts: Array<{ label: string; count: ActionCount; per: number }>,
  unit: string,
): string {
  const lines: string[] = [];
  const header = [
    'action kind',
    ...parts.map((p) => p.label),
    `total per ${unit}`,
    'what (per ' + unit + ')',
  ];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map(() => '---').join('|')}|`);
  const total = emptyCount();
  const perUnit = parts.map((p) => scaleCount(p.count, 1 / p.per));
  for (const part of perUnit) addCount(total, part);
  for (const kind of ACTION_KINDS) {
    if (!parts.some((p) => p.count.byKind[kind])) continue;
    lines.push(
      `| ${[
        kind,
        ...perUnit.map((p) => fmt(p.byKind[kind] ?? 0, 3)),
        fmt(total.byKind[kind] ?? 0, 3),
        describeNames(total.detail[kind]),
      ].join(' | ')} |`,
    );
  }
  lines.push(
    `| ${[
      '**all**',
      ...perUnit.map((p) => `**${fmt(totalActions(p), 3)}**`),
      `**${fmt(totalActions(total), 3)}**`,
      '',
    ].join(' | ')} |`,
  );
  const notes = Object.entries(total.notes);
  if (notes.length)
    lines.push('', `Not billed, seen: ${notes.map(([w, n]) => `${w} ${fmt(n, 3)}`).join('; ')}`);
  return lines.join('\n');
}

/** The cost line: actions per unit, and per 10,000 units at the first tier's and the largest tier's price. */
export function costLine(actionsPerUnit: number, unit: string): string {
  const per10k = actionsPerUnit * 10_000;
  return (
    `${fmt(actionsPerUnit, 2)} actions per ${unit}: ${fmt(per10k, 0)} per 10,000 ${unit}s, ` +
    `$${fmt(dollars(per10k, PRICE_PER_MILLION.first5M), 2)} at $${PRICE_PER_MILLION.first5M} per million ` +
    `(the first 5 M a month), $${fmt(dollars(per10k, PRICE_PER_MILLION.above200M), 2)} at ` +
    `$${PRICE_PER_MILLION.above200M} (above 200 M a month)`
  );
}

/**
 * The median over runs of each kind's count per unit (each count first divided by its run's `per`), with the
 * detail of the run whose total is the median; notes likewise.
 */
export function medianCount(runs: Array<{ count: ActionCount; per: number }>): ActionCount {
  const perUnit = runs.map((r) => scaleCount(r.count, 1 / r.per));
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const byTotal = [...perUnit].sort((a, b) => totalActions(a) - totalActions(b));
  const middleRun = byTotal[Math.floor((byTotal.length - 1) / 2)]!;
  const result = scaleCount(middleRun, 1);
  result.byKind = {};
  for (const kind of ACTION_KINDS) {
    if (!perUnit.some((c) => c.byKind[kind])) continue;
    result.byKind[kind] = median(perUnit.map((c) => c.byKind[kind] ?? 0));
    // The middle run's detail, scaled to the kind's median so that the two agree.
    const names = result.detail[kind];
    const sum = names ? sumValues(names) : 0;
    if (names && sum > 0) {
      for (const name of Object.keys(names)) names[name] = (names[name]! * result.byKind[kind]!) / sum;
    }
  }
  return result;
}
