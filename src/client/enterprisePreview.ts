/**
 * The preview of an Enterprise Connect downgrade: what it will do, shown before anything is revoked. Built by the
 * client (`EnterpriseClient.preview`) from the users it captured and what Cronofy says of the
 * current service account; its id is what an operator approves.
 */
import type { ServiceAccountProfile } from '../cronofy/schemas.js';
import type { Capture } from '../store/enterpriseUsers.js';
import { FREE_BUSY_PROVIDERS } from '../workflows/definitions.js';
import { BATCH_SIZE } from '../workflows/usersWindow.js';

export interface EnterprisePreview {
  previewId: string;
  domain: string;
  createdAt: string;
  users: { count: number } & Capture['dropped'];
  /** What Cronofy reports of the current service account; absent when only its sub was given. */
  serviceAccount?: ServiceAccountProfile & { sub?: string };
  cronofyCalls: {
    total: number;
    /** Revoking the current service account, exchanging the administrator's code and reading its userinfo. */
    serviceAccount: number;
    /** One per batch of up to 50 users. */
    accessRequests: number;
    /** One code exchange per user. */
    userExchanges: number;
  };
  /** At the configured rate limit, not counting the time people take to consent. */
  estimatedSeconds: number;
  cronofyCallsPerSecond: number;
  warnings: string[];
}

export function buildPreview(input: {
  previewId: string;
  domain: string;
  capture: Capture;
  serviceAccount?: ServiceAccountProfile & { sub?: string };
  running?: string;
  cronofyCallsPerSecond: number;
  now: Date;
}): EnterprisePreview {
  const { capture, serviceAccount } = input;
  const cronofyCalls = {
    serviceAccount: 3,
    accessRequests: Math.ceil(capture.count / BATCH_SIZE),
    userExchanges: capture.count,
  };
  const total = cronofyCalls.serviceAccount + cronofyCalls.accessRequests + cronofyCalls.userExchanges;
  return {
    previewId: input.previewId,
    domain: input.domain,
    createdAt: input.now.toISOString(),
    users: { count: capture.count, ...capture.dropped },
    serviceAccount,
    cronofyCalls: { total, ...cronofyCalls },
    estimatedSeconds: Math.ceil(total / input.cronofyCallsPerSecond),
    cronofyCallsPerSecond: input.cronofyCallsPerSecond,
    warnings: warnings(input),
  };
}

function warnings({
  domain,
  capture,
  serviceAccount,
  running,
}: Parameters<typeof buildPreview>[0]): string[] {
  const found: string[] = [];
  if (running)
    found.push(`a downgrade of ${domain} is already running (${running}); starting returns that one`);
  if (capture.count === 0) found.push('no users: only the service account would be downgraded');
  if (capture.dropped.duplicates > 0) found.push(`${capture.dropped.duplicates} duplicate emails dropped`);
  if (capture.dropped.malformed > 0) found.push(`${capture.dropped.malformed} malformed emails dropped`);
  if (!serviceAccount) {
    found.push('the service account was named by its sub only: its provider and scope were not checked');
    return found;
  }
  if ((FREE_BUSY_PROVIDERS as readonly string[]).includes(serviceAccount.providerName ?? '')) {
    found.push(`the service account is already Free/Busy (${serviceAccount.providerName})`);
  }
  if (serviceAccount.status && serviceAccount.status !== 'active') {
    found.push(`the service account's authorization is ${serviceAccount.status}`);
  }
  if (serviceAccount.domain && serviceAccount.domain.toLowerCase() !== domain.toLowerCase()) {
    found.push(`the service account belongs to ${serviceAccount.domain}, not ${domain}`);
  }
  return found;
}
