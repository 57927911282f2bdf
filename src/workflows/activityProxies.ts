import { proxyActivities, proxyLocalActivities, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { NON_RETRYABLE_CRONOFY_ERRORS } from '../cronofy/errors.js';
import { cronofyTaskQueue, type ApplicationEvent } from './definitions.js';
import type { DomainEvent } from './enterpriseDefinitions.js';
import type { CampaignEvent } from './campaignDefinitions.js';

type Activities = ReturnType<typeof createActivities>;

const retry: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  nonRetryableErrorTypes: [...NON_RETRYABLE_CRONOFY_ERRORS, 'SecretNotFoundError', 'CredentialNotFoundError'],
};

/**
 * Activities that call Cronofy run on their own task queue, whose server-enforced rate limit keeps every worker
 * together under Cronofy's. Retried with backoff (429 honours Retry-After); 4xx other than 401/429 fail at once.
 */
export function cronofyActivities() {
  return proxyActivities<Activities>({
    taskQueue: cronofyTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '30m',
    retry,
  });
}

/** Activities that touch only this service's own parts: the credential store, signing, the app's webhook. */
export function serviceActivities() {
  return proxyActivities<Activities>({ startToCloseTimeout: '30s', scheduleToCloseTimeout: '30m', retry });
}

/**
 * The same activities run by the worker inside the workflow task that decides them: for short calls, such as one
 * database write, that would otherwise cost the server an activity task and the workflow a workflow task more.
 */
export function serviceLocalActivities() {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '30m',
    localRetryThreshold: '10s',
    retry,
  });
}

/**
 * Tells the application (its webhook) about a downgrade, as a local activity: one HTTP POST of at most 10 s, run by
 * the worker inside the workflow task that decides it. As an activity it cost the server a workflow task, a
 * task-queue dispatch and two history writes more per event. The retry policy is the same, but a failing webhook
 * costs history instead of none: the attempts of the first minute or so run inside one workflow task, and each
 * later one follows a server timer (a timer, a workflow task and a marker: some 180 events over a 30-minute
 * outage). Delivery stays at least once, as before: an attempt whose workflow task is not accepted runs again, so
 * the application tells repeats apart by the event's type and its status's workflowId, state, prompt and
 * remindersSent.
 */
export function applicationNotifier(): (
  event: ApplicationEvent | DomainEvent | CampaignEvent,
) => Promise<void> {
  const local = serviceLocalActivities();
  return (event) => local.notifyApplication(event);
}
