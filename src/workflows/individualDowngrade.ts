import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  applicationNotifier,
  cronofyActivities,
  serviceActivities,
  serviceLocalActivities,
} from './activityProxies.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import { waitWithReminders } from './waiting.js';
import {
  FREE_BUSY_PROVIDERS,
  NO_ACCESS_PROVIDER,
  getStatus,
  openLink,
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
  /** The service's own link, when the downgrade revokes only once the person opens it. */
  let link: { nonce: string; opened: boolean } | undefined;
  countDowngradeStarted('individual');

  setHandler(getStatus, () => status);
  setHandler(
    openLink,
    async () => {
      link!.opened = true;
      await condition(() => !['awaiting_link_open', 'revoking'].includes(status.state));
      if (status.state !== 'awaiting_reauthorization' || !status.authorizationUrl) {
        throw ApplicationFailure.nonRetryable(`the downgrade is ${status.state}`, 'DowngradeNotWaiting');
      }
      return { authorizationUrl: status.authorizationUrl };
    },
    {
      validator: ({ nonce }) => {
        if (!link || nonce !== link.nonce) throw new Error('this link was not issued by this downgrade');
        if (!['awaiting_link_open', 'revoking', 'awaiting_reauthorization'].includes(status.state)) {
          throw new Error(`the downgrade is ${status.state}`);
        }
      },
    },
  );
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
    await CancellationScope.nonCancellable(async () => {
      await recordForCampaign();
      await notifyApplication({ type: 'finished', status });
    });
    return { ...status, state } as DowngradeResult;
  };
  /** A campaign's user records their outcome where the campaign counts it. */
  const recordForCampaign = async () => {
    if (!input.campaign) return;
    await serviceLocalActivities().recordCampaignOutcome({
      captureId: input.campaign.captureId,
      sub: input.sub,
      state: status.state,
      reason: status.reason,
      providerName: status.providerName,
      credentialRef: status.credentialRef,
    });
  };

  try {
    if (input.revokeWhenOpened && !(await linkOpened())) {
      return await finish('link_not_opened', {
        reason: 'the link was never opened: the connection was not revoked and stays Read/Write',
      });
    }
    enter('revoking', {
      authorizationUrl: undefined,
      authorizationExpiresAt: undefined,
      waitingSince: undefined,
    });
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
      const callback = await waitForPerson(
        'awaiting_reauthorization',
        { prompt, authorizationUrl: request.authorizationUrl },
        expiresAt,
        () => pending?.callback,
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
      await CancellationScope.nonCancellable(async () => {
        await recordForCampaign();
        await notifyApplication({ type: 'finished', status });
      });
      throw error;
    }
    if (error instanceof ActivityFailure) {
      return await finish('failed', {
        reason: `${error.activityType}: ${error.cause?.message ?? error.message}`,
      });
    }
    throw error;
  }

  /**
   * Shows the person's link (and the application, which hands it on), then waits until `received()` answers or
   * the deadline passes, reminding the application meanwhile.
   */
  async function waitForPerson<T>(
    state: 'awaiting_reauthorization' | 'awaiting_link_open',
    details: Partial<DowngradeStatus> & { authorizationUrl: string },
    expiresAt: number,
    received: () => T | undefined,
  ): Promise<T | undefined> {
    enter(state, {
      ...details,
      authorizationExpiresAt: new Date(expiresAt).toISOString(),
      waitingSince: new Date().toISOString(),
    });
    await notifyApplication({ type: 'authorization_required', status });
    return waitWithReminders(received, expiresAt, input.reminderIntervalMs, () => {
      status.remindersSent += 1;
      return notifyApplication({ type: 'reminder', status });
    });
  }

  /**
   * Hands out the service's own link and waits, with reminders, until the person opens it (the openLink update)
   * or its deadline passes; nothing has been revoked meanwhile.
   */
  async function linkOpened(): Promise<boolean> {
    const expiresAt = Date.now() + input.deadlineMs;
    const created = await service.createOpenLink({
      workflowId: status.workflowId,
      runId: workflowInfo().runId,
      firstRunId: workflowInfo().firstExecutionRunId,
      expiresAt,
    });
    link = { nonce: created.nonce, opened: false };
    const opened = await waitForPerson(
      'awaiting_link_open',
      { authorizationUrl: created.url },
      expiresAt,
      () => (link?.opened ? true : undefined),
    );
    return opened === true;
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
