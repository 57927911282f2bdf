import {
  ActivityFailure,
  CancellationScope,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { applicationNotifier, cronofyActivities, serviceActivities } from './activityProxies.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import { waitWithReminders } from './waiting.js';
import {
  FREE_BUSY_PROVIDERS,
  NO_ACCESS_PROVIDER,
  getStatus,
  reauthorizationCallback,
  searchAttributes,
  type DowngradeResult,
  type DowngradeState,
  type DowngradeStatus,
  type IndividualDowngradeInput,
  type ReauthorizationCallback,
} from './definitions.js';

/**
 * Downgrades one Individual Connect user from Read/Write to Free/Busy, following Cronofy's documented steps:
 * revoke → ask the person to authorize again choosing Free/Busy → wait for the callback → exchange the code →
 * verify the access mode → record. Every way it can end is a named state.
 */
export async function individualDowngrade(input: IndividualDowngradeInput): Promise<DowngradeResult> {
  const cronofy = cronofyActivities();
  const service = serviceActivities();
  const notifyApplication = applicationNotifier();
  const status: DowngradeStatus = {
    workflowId: workflowInfo().workflowId,
    sub: input.sub,
    userId: input.userId,
    state: 'revoking',
    prompt: 0,
    maxPrompts: input.maxPrompts,
    remindersSent: 0,
  };
  let pending: { nonce: string; callback?: ReauthorizationCallback } | undefined;
  countDowngradeStarted('individual');

  setHandler(getStatus, () => status);
  setHandler(reauthorizationCallback, (callback) => {
    if (
      !pending ||
      callback.prompt !== status.prompt ||
      callback.nonce !== pending.nonce ||
      pending.callback
    ) {
      log.warn('Ignored a re-authorization callback that does not answer the current prompt', {
        prompt: callback.prompt,
        currentPrompt: status.prompt,
      });
      return;
    }
    pending.callback = callback;
  });

  const enter = (state: DowngradeState, details: Partial<DowngradeStatus> = {}) => {
    Object.assign(status, details, { state });
    setCurrentDetails(describeStatus(status));
    upsertSearchAttributes([
      { key: searchAttributes.state, value: state },
      ...(status.providerName ? [{ key: searchAttributes.provider, value: status.providerName }] : []),
    ]);
  };
  const finish = async (state: DowngradeResult['state'], details: Partial<DowngradeStatus> = {}) => {
    enter(state, {
      authorizationUrl: undefined,
      authorizationExpiresAt: undefined,
      waitingSince: undefined,
      ...details,
    });
    countDowngradeFinished('individual', state);
    await CancellationScope.nonCancellable(() => notifyApplication({ type: 'finished', status }));
    return { ...status, state } as DowngradeResult;
  };

  try {
    enter('revoking');
    await cronofy.revokeAuthorization(
      input.credentialRef ? { credentialRef: input.credentialRef } : { sub: input.sub },
    );

    while (status.prompt < input.maxPrompts) {
      const prompt = status.prompt + 1;
      const expiresAt = Date.now() + input.deadlineMs;
      const request = await service.createAuthorizationRequest({
        workflowId: status.workflowId,
        runId: workflowInfo().runId,
        firstRunId: workflowInfo().firstExecutionRunId,
        prompt,
        providerHint: input.providerHint,
        expiresAt,
      });
      pending = { nonce: request.nonce };
      enter('awaiting_reauthorization', {
        prompt,
        authorizationUrl: request.authorizationUrl,
        authorizationExpiresAt: new Date(expiresAt).toISOString(),
        waitingSince: new Date().toISOString(),
      });
      await notifyApplication({ type: 'authorization_required', status });

      const callback = await waitWithReminders(
        () => pending?.callback,
        expiresAt,
        input.reminderIntervalMs,
        () => {
          status.remindersSent += 1;
          return notifyApplication({ type: 'reminder', status });
        },
      );
      if (!callback) return await finish('expired', { reason: 'nobody re-authorized before the deadline' });
      if ('error' in callback) {
        if (callback.error === 'access_denied')
          return await finish('denied', { reason: 'the person declined' });
        return await finish('failed', { reason: `Cronofy redirected with error ${callback.error}` });
      }

      enter('verifying', {
        authorizationUrl: undefined,
        authorizationExpiresAt: undefined,
        waitingSince: undefined,
      });
      const grant = await cronofy.exchangeAuthorizationCode({
        codeRef: callback.codeRef,
        workflowId: status.workflowId,
      });
      status.providerName = grant.providerName;

      if (grant.sub !== input.sub) {
        await cronofy.revokeAuthorization({ credentialRef: grant.credentialRef });
        return await finish('other_account', {
          reason: 'the person authorized a different calendar account',
        });
      }
      if ((FREE_BUSY_PROVIDERS as readonly string[]).includes(grant.providerName)) {
        return await finish('completed', { credentialRef: grant.credentialRef });
      }
      // Not Free/Busy: the connection we just got is not one the application asked for; take it back.
      await cronofy.revokeAuthorization({ credentialRef: grant.credentialRef });
      if (grant.providerName === NO_ACCESS_PROVIDER) {
        return await finish('no_access', { reason: 'the person chose No Access' });
      }
      log.info('Read/Write chosen again', { prompt, providerName: grant.providerName });
    }
    return await finish('read_write_kept', {
      reason: `Read/Write was chosen again on all ${input.maxPrompts} prompts`,
    });
  } catch (error) {
    if (isCancellation(error)) {
      enter('cancelled', { reason: 'cancelled by request' });
      countDowngradeFinished('individual', 'cancelled');
      await CancellationScope.nonCancellable(() => notifyApplication({ type: 'finished', status }));
      throw error;
    }
    if (error instanceof ActivityFailure) {
      return await finish('failed', {
        reason: `${error.activityType}: ${error.cause?.message ?? error.message}`,
      });
    }
    throw error;
  }
}

/** What the Temporal UI shows operators as the run's current details. */
function describeStatus(status: DowngradeStatus): string {
  const lines = [`**${status.state}** · prompt ${status.prompt} of ${status.maxPrompts}`];
  if (status.waitingSince) lines.push(`Waiting for the person since ${status.waitingSince}`);
  if (status.authorizationExpiresAt) lines.push(`Consent link expires ${status.authorizationExpiresAt}`);
  if (status.remindersSent) lines.push(`Reminders sent: ${status.remindersSent}`);
  if (status.providerName) lines.push(`Provider: ${status.providerName}`);
  if (status.reason) lines.push(`Reason: ${status.reason}`);
  return lines.join('\n\n');
}
