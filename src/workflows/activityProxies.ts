import { proxyActivities, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { NON_RETRYABLE_CRONOFY_ERRORS } from '../cronofy/errors.js';
import { cronofyTaskQueue } from './definitions.js';

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
