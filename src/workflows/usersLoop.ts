import { allHandlersFinished, condition, sleep, workflowInfo } from '@temporalio/workflow';
import type { OperatedStatus, OperatorControls } from './operatorControls.js';
import type { Batch, OutcomeCounts, UsersWindow } from './usersWindow.js';

type Counts = OutcomeCounts;

/**
 * Continue as new after this many events, far below Temporal's 10,240-event warning: the budget is also what a
 * run costs to replay when the worker has pushed it out of its cache, or when a query reaches a run that has just
 * continued as new (the server answers it from a full replay of the closed run).
 */
const DEFAULT_HISTORY_EVENT_BUDGET = 1_000;

/**
 * Whether the run should continue as new: checked on every pass, since a window that refills as fast as it drains
 * would otherwise never get there.
 */
export function historyFull(budget = DEFAULT_HISTORY_EVENT_BUDGET): boolean {
  return workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > budget;
}

/** What a run that moves many users does at each step of its users phase. */
export interface UsersLoopSteps {
  /** After each step: show the window's counts. */
  show(): void;
  historyFull(): boolean;
  /** Called once the batches' follow-ups and the update handlers have finished. */
  continueAsNew(): Promise<never>;
  /** Starts the batch's users; `followUp` is what may finish later (a batch's access request). */
  startBatch(batch: Batch): Promise<{ followUp: Promise<void> }>;
  countOutcomes(): Promise<Counts>;
  /** The circuit breaker paused the run (the application is told). */
  tripped(): Promise<void>;
}

/**
 * The users phase: start users a batch at a time while the window has room and the run is not paused; otherwise
 * read the outcomes (soon after progress, then less and less often), and let the circuit breaker pause the run.
 * Returns when every user has an outcome and every follow-up has finished.
 */
export async function moveUsersInWindow<S extends OperatedStatus>(
  window: UsersWindow,
  controls: OperatorControls<S>,
  status: S,
  steps: UsersLoopSteps,
): Promise<void> {
  // A batch's follow-up waits its turn at the Cronofy task queue's rate limit, behind the users' code exchanges: the
  // next batch starts without waiting for it, so that the queue does not run dry while users are left. Each is
  // awaited before the run continues as new (which would abandon it) or ends.
  const followUps: Array<Promise<void>> = [];
  for (;;) {
    steps.show();
    if (window.done) break;
    if (steps.historyFull()) {
      await Promise.all(followUps);
      await condition(allHandlersFinished);
      await steps.continueAsNew();
    }
    const batch = controls.paused ? undefined : window.takeBatch();
    if (batch) {
      followUps.push((await controls.whileBusy(() => steps.startBatch(batch))).followUp);
      continue;
    }
    // A resume wakes a paused loop at once; otherwise the wait is a plain timer.
    if (controls.paused) await condition(() => !controls.paused, window.pollDelayMs);
    else await sleep(window.pollDelayMs);
    window.update(await steps.countOutcomes());
    const trip = controls.control.tripReason(window.counts);
    if (trip) {
      status.counts = window.counts;
      controls.pause({ by: 'circuit breaker', reason: trip, at: new Date().toISOString() });
      await steps.tripped();
    }
  }
  await Promise.all(followUps);
}
