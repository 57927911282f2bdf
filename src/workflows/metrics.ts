/**
 * The workflows' own metrics, through the SDK's workflow metric meter: exported by the worker's Runtime (on the
 * Prometheus endpoint, with the SDK's metrics) and never recorded while a history replays, so a replay neither
 * double counts nor adds a workflow command.
 */
import { metricMeter } from '@temporalio/workflow';

export const DOWNGRADE_STARTED = 'downgrade_started';
export const DOWNGRADE_FINISHED = 'downgrade_finished';

export type DowngradeKind = 'individual' | 'enterprise' | 'enterprise_user';

/** Once per downgrade: an Enterprise domain's runs after continue-as-new are the same downgrade. */
export function countDowngradeStarted(kind: DowngradeKind): void {
  metricMeter.createCounter(DOWNGRADE_STARTED, undefined, 'Downgrades started, by kind').add(1, { kind });
}

/**
 * `outcome` is the final state: completed, denied, expired, failed, cancelled, … Counted in the workflow task that
 * closes the workflow, for an Individual downgrade and an Enterprise user: if the server rejects that task because
 * an event arrived meanwhile (a signal or a cancellation request in the last moment), it runs again, not as a
 * replay, and counts again. An Enterprise parent, whose last child's completion often arrives just then, counts one
 * task earlier (COUNT_FINISH_BEFORE_CLOSING in enterpriseDowngrade.ts). A worker lost in the middle of the counting
 * task counts again too: at least once.
 */
export function countDowngradeFinished(kind: DowngradeKind, outcome: string): void {
  metricMeter
    .createCounter(DOWNGRADE_FINISHED, undefined, 'Downgrades finished, by kind and final state')
    .add(1, { kind, outcome });
}
