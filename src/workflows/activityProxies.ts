import {
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { CronofyActivities, ServiceActivities } from '../activities/index.js';
import { NON_RETRYABLE_CRONOFY_ERRORS } from '../cronofy/errors.js';
import { cronofyTaskQueue, type ApplicationEvent } from './definitions.js';
import type { DomainEvent } from './enterpriseDefinitions.js';
import type { CampaignEvent } from './campaignDefinitions.js';

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
  return proxyActivities<CronofyActivities>({
    taskQueue: cronofyTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '30m',
    retry,
  });
}

/**
 * Activities that touch only this service's own parts: its database, signing, starting workflows. A Cronofy
 * activity is not among them: calling one through this proxy does not type-check (test/activityBoundary.test.ts).
 */
export function serviceActivities() {
  return proxyActivities<ServiceActivities>({
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '30m',
    retry,
  });
}

/**
 * The same activities run by the worker inside the workflow task that decides them: for short calls, such as one
 * database write, that would otherwise cost the server an activity task and the workflow a workflow task more.
 */
export function serviceLocalActivities() {
  return proxyLocalActivities<ServiceActivities>({
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '30m',
    localRetryThreshold: '10s',
    retry,
  });
}

/**
 * Tells the application (its webhook) and, given an address, the person (email) about a downgrade. The event is
 * only recorded here, by a local activity inside the workflow task that decides it; the dispatcher delivers it
 * later, on its own schedule of days (src/notifications/dispatcher.ts), so no delivery can hold or fail the run.
 * Recording is retried for as long as the service's database is away, since nothing else of the run can go on
 * without it either; an event that cannot be recorded at all is logged and the run goes on. The event's id comes
 * from the run and the activity's place in it, so recording it again (a workflow task retried) changes nothing.
 */
export function applicationNotifier(recipient?: {
  email?: string;
}): (event: ApplicationEvent | DomainEvent | CampaignEvent) => Promise<void> {
  const local = proxyLocalActivities<ServiceActivities>({
    startToCloseTimeout: '30s',
    localRetryThreshold: '10s',
    retry,
  });
  return async (event) => {
    try {
      await (recipient?.email
        ? local.notifyApplication(event, { email: recipient.email })
        : local.notifyApplication(event));
    } catch (error) {
      if (isCancellation(error)) throw error;
      log.error('An event could not be recorded for delivery', { type: event.type, error: String(error) });
    }
  };
}
