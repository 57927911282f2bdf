// Verification from Temporal: signals in each history, how each run ended, and when.
import { tsToMs } from '@temporalio/common/lib/time.js';
import got from 'got';
import { reauthorizationCallback, searchAttributes } from '../../src/workflows/definitions.js';
import { mapLimit, serverRequests, sleep } from '../support.js';
import { PREPARE_CONCURRENCY } from './options.js';
import type { Stack } from './stack.js';
import { runningQuery } from './prepare.js';

interface WorkflowFacts {
  signals: number;
  status: string;
  state?: string;
  signalAt?: number;
  verifiedAt?: number;
  closedAt?: number;
  /** The steps between the signal and the exchange done: the first workflow task after the signal, the exchange. */
  steps: {
    taskStartedAt?: number;
    taskCompletedAt?: number;
    exchangeScheduledAt?: number;
    exchangeStartedAt?: number;
  };
  /**
   * After the first signal: workflow tasks started; workflow tasks timed out (on the sticky queue before they
   * started, each then scheduled again on the shared queue, so they come on top of the started ones); activities
   * scheduled.
   */
  afterSignal: { workflowTasks: number; timedOut: number; activities: number };
}

export async function waitUntilNoneRunning(
  stack: Stack,
  since: Date,
  status: { text: string },
  label: string,
) {
  for (;;) {
    const left = (await stack.client.workflow.count(runningQuery(stack, since))).count;
    status.text = `${label}: ${left} still running`;
    if (left === 0) return;
    await sleep(1000);
  }
}

export async function workflowFacts(stack: Stack, workflowIds: string[], status: { text: string }) {
  const listed = new Map<string, { status: string; state?: string }>();
  for await (const info of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` })) {
    listed.set(info.workflowId, {
      status: info.status.name,
      state: info.typedSearchAttributes.get(searchAttributes.state),
    });
  }
  let read = 0;
  const facts = await mapLimit(
    workflowIds,
    PREPARE_CONCURRENCY,
    async (workflowId): Promise<WorkflowFacts> => {
      const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
      const activityTypes = new Map<string, string>();
      const result: WorkflowFacts = {
        signals: 0,
        status: listed.get(workflowId)?.status ?? 'UNKNOWN',
        afterSignal: { workflowTasks: 0, timedOut: 0, activities: 0 },
        steps: {},
      };
      result.state = listed.get(workflowId)?.state;
      for (const event of history.events ?? []) {
        const at = tsToMs(event.eventTime);
        const signal = event.workflowExecutionSignaledEventAttributes;
        if (signal) {
          if (signal.signalName === reauthorizationCallback.name) result.signals += 1;
          result.signalAt ??= at;
        }
        if (result.signalAt !== undefined) {
          if (event.workflowTaskStartedEventAttributes) result.steps.taskStartedAt ??= at;
          if (event.workflowTaskCompletedEventAttributes && result.steps.taskStartedAt !== undefined)
            result.steps.taskCompletedAt ??= at;
          if (event.workflowTaskStartedEventAttributes) result.afterSignal.workflowTasks += 1;
          if (event.workflowTaskTimedOutEventAttributes) result.afterSignal.timedOut += 1;
          if (event.activityTaskScheduledEventAttributes) result.afterSignal.activities += 1;
        }
        const scheduled = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (scheduled) activityTypes.set(String(event.eventId), scheduled);
        if (scheduled === 'exchangeAuthorizationCode') result.steps.exchangeScheduledAt = at;
        const started = event.activityTaskStartedEventAttributes?.scheduledEventId;
        if (started != null && activityTypes.get(String(started)) === 'exchangeAuthorizationCode') {
          result.steps.exchangeStartedAt = at;
        }
        const completed = event.activityTaskCompletedEventAttributes?.scheduledEventId;
        if (completed != null && activityTypes.get(String(completed)) === 'exchangeAuthorizationCode') {
          result.verifiedAt = at;
        }
        if (event.workflowExecutionCompletedEventAttributes) result.closedAt = at;
      }
      status.text = `histories read ${++read}/${workflowIds.length}`;
      return result;
    },
  );
  return facts;
}

/** SignalWorkflowExecution requests the server's frontend has received. */
export async function signalRequests(stack: Stack): Promise<number> {
  return (await serverRequests(stack.metricsUrl)).frontend.SignalWorkflowExecution ?? 0;
}

/** The service's `downgrade_callbacks` counters, by result (delivered, forged, replay, …), summed over endpoints. */
export async function serviceCallbackCounts(stack: Stack): Promise<Record<string, number>> {
  const text = await got(stack.serviceMetricsUrl, { retry: { limit: 0 } }).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('downgrade_callbacks')) continue;
    const result = /result="([^"]+)"/.exec(line)?.[1];
    if (result) counts[result] = (counts[result] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

export function countsDelta(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    if (value - (before[key] ?? 0) > 0) delta[key] = value - (before[key] ?? 0);
  }
  return delta;
}
