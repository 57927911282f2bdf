import { cronofyActivities } from './activityProxies.js';
import type { ServiceAccountProfile } from '../cronofy/schemas.js';

/**
 * Reads what a domain's current service account is (provider, domain, scope, delegated scope) for a preview. A
 * workflow, so that the call goes through the Cronofy task queue's rate limit and the worker's credentials like
 * every other; it changes nothing at Cronofy.
 */
export async function inspectServiceAccount(input: {
  serviceAccountRef: string;
}): Promise<ServiceAccountProfile> {
  return cronofyActivities().inspectServiceAccount(input);
}
