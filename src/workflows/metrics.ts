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
 * `outcome` is the final state: completed, denied, expired, failed, cancelled, … At least once: if the workflow
 * task that completes the workflow is rejected because an event arrived meanwhile (for an Enterprise parent, a
 * child's completion after its last user reported), that task runs again, not as a replay, and counts again.
 */
export function countDowngradeFinished(kind: DowngradeKind, outcome: string): void {
  metricMeter
    .createCounter(DOWNGRADE_FINISHED, undefined, 'Downgrades finished, by kind and final state')
    .add(1, { kind, outcome });
}
