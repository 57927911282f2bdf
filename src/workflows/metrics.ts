/**
 * The workflows' own metrics, through the SDK's workflow metric meter: exported by the worker's Runtime (on the
 * Prometheus endpoint, with the SDK's metrics) and never recorded while a history replays, so a replay neither
 * double counts nor adds a workflow command.
 */
import { metricMeter } from '@temporalio/workflow';

export const DOWNGRADE_STARTED = 'downgrade_started';
export const DOWNGRADE_FINISHED = 'downgrade_finished';

export type DowngradeKind = 'individual' | 'enterprise' | 'enterprise_user' | 'campaign';

/** Once per downgrade: a domain's or a campaign's runs after continue-as-new are the same downgrade. */
export function countDowngradeStarted(kind: DowngradeKind): void {
  metricMeter.createCounter(DOWNGRADE_STARTED, undefined, 'Downgrades started, by kind').add(1, { kind });
}

/**
 * `outcome` is the final state: completed, denied, expired, failed, cancelled, … At least once. A count is recorded
 * again when the workflow task that made it runs again, not as a replay: its worker was lost or it timed out, or
 * the server rejected it. The server rejects only a task that closes the workflow, when an event arrived while it
 * was in flight. An Individual downgrade counts in its closing task (a last-moment signal or cancellation request
 * can repeat it); an Enterprise user counts before the activity that records its outcome, so in an earlier task;
 * an Enterprise domain counts in its closing task, which nothing of its users can reject: they are not its children
 * and do not signal it.
 */
export function countDowngradeFinished(kind: DowngradeKind, outcome: string): void {
  metricMeter
    .createCounter(DOWNGRADE_FINISHED, undefined, 'Downgrades finished, by kind and final state')
    .add(1, { kind, outcome });
}
