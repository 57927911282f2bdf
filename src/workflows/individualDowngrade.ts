import { endOnError } from './runEnding.js';
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  applicationNotifier,
  cronofyActivities,
  serviceActivities,
  serviceLocalActivities,
} from './activityProxies.js';

import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import {
  listenForCallbacks,
  NOT_WAITING,
  reauthorize,
  thisRun,
  type CallbackInbox,
  type Human,
} from './reauthorization.js';
import { showState } from './showState.js';
import { waitWithReminders } from './waiting.js';
import {
  CONSENT_REQUEST_RENEWAL_MARGIN_MS,
  consentLink,
  getStatus,
  openLink,
  renewConsentRequest,
  isTerminalState,
  type DowngradeResult,
  type DowngradeState,
  type DowngradeStatus,
  type IndividualDowngradeInput,
} from './definitions.js';

/**
 * Downgrades one Individual Connect user from Read/Write to Free/Busy, following Cronofy's documented steps:
 * revoke → ask the person to authorize again choosing Free/Busy (reauthorization.ts: wait for the callback,
 * exchange the code, verify the access mode) → record. Every way it can end is a named state.
 */
export async function individualDowngrade(input: IndividualDowngradeInput): Promise<DowngradeResult> {
  const run = new IndividualRun(input);
  countDowngradeStarted('individual');
  const inbox = listenForCallbacks();
  run.handleRenewal(inbox);
  const link = input.revokeWhenOpened ? run.handleOpenLink() : undefined;

  try {
    if (link && !(await link.opened())) {
      return await run.finish('link_not_opened', {
        reason: 'the link was never opened: the connection was not revoked and stays Read/Write',
      });
    }
    await run.revoke();
    const outcome = await reauthorize(run.person(), inbox);
    if ('grant' in outcome)
      return await run.finish('completed', { credentialRef: outcome.grant.credentialRef });
    return await run.finish(outcome.state, { reason: outcome.reason });
  } catch (error) {
    return await endOnError(error, {
      cancelled: () => run.finish('cancelled', { reason: 'cancelled by request' }).then(() => undefined),
      failed: (reason) => run.finish('failed', { reason }),
    });
  }
}

/** One downgrade's status and the steps that show it: to the Temporal UI, search attributes and the application. */
class IndividualRun {
  readonly status: DowngradeStatus;
  readonly #notify: ReturnType<typeof applicationNotifier>;
  readonly #service = serviceActivities();
  /**
   * What the run's search attributes hold: at first the state it was started with. Runs started before the input
   * named it upsert their first state again, as they did when their histories were written.
   */
  #shown: { state?: DowngradeState; providerName?: string };

  constructor(private readonly input: IndividualDowngradeInput) {
    this.#notify = applicationNotifier({ email: input.email });
    this.#shown = { state: input.stateAtStart };
    this.status = {
      workflowId: workflowInfo().workflowId,
      sub: input.sub,
      userId: input.userId,
      state: 'revoking',
      prompt: 0,
      maxPrompts: input.maxPrompts,
      remindersSent: 0,
    };
    setHandler(getStatus, () => this.status);
    setHandler(consentLink, () => this.consentLink());
  }

  enter(state: DowngradeState, details: Partial<DowngradeStatus> = {}): void {
    Object.assign(this.status, details, { state });
    const { providerName } = this.status;
    // Each upsert is a billed action: none for what the search attributes already hold.
    if (state === this.#shown.state && providerName === this.#shown.providerName) {
      setCurrentDetails(describeStatus(this.status));
      return;
    }
    showState(state, describeStatus(this.status), providerName);
    this.#shown = { state, providerName };
  }

  /** Ends in `state`: recorded for a campaign and told to the application even when the run is being cancelled. */
  async finish(
    state: DowngradeResult['state'],
    details: Partial<DowngradeStatus> = {},
  ): Promise<DowngradeResult> {
    this.enter(state, { ...NOT_WAITING, ...details });
    countDowngradeFinished('individual', state);
    await CancellationScope.nonCancellable(async () => {
      if (this.input.campaign) {
        await serviceLocalActivities().recordCampaignOutcome({
          captureId: this.input.campaign.captureId,
          sub: this.input.sub,
          state,
          reason: this.status.reason,
          providerName: this.status.providerName,
          credentialRef: this.status.credentialRef,
        });
      }
      await this.#notify({ type: 'finished', status: this.status });
    });
    return { ...this.status, state };
  }

  /** The person's link, once there is one (the consentLink update). */
  async consentLink(): Promise<{ authorizationUrl: string; authorizationExpiresAt: string; link?: string }> {
    const { status } = this;
    await condition(() => status.authorizationUrl !== undefined || isTerminalState(status.state));
    if (!status.authorizationUrl || !status.authorizationExpiresAt) {
      throw notWaiting(status.state);
    }
    return {
      authorizationUrl: status.authorizationUrl,
      authorizationExpiresAt: status.authorizationExpiresAt,
      link: status.link,
    };
  }

  /**
   * The `renewConsentRequest` update: the person's consent request expired while the prompt still waits, so the
   * prompt gives way to a fresh one (a prompt more, under the same deadline), whose URL it answers with.
   */
  handleRenewal(inbox: CallbackInbox): void {
    const { status } = this;
    setHandler(
      renewConsentRequest,
      async () => {
        const prompt = status.prompt;
        inbox.renew();
        await condition(
          () =>
            (status.prompt > prompt && status.state === 'awaiting_reauthorization') ||
            isTerminalState(status.state),
        );
        if (status.state !== 'awaiting_reauthorization' || !status.authorizationUrl) {
          throw notWaiting(status.state);
        }
        return { authorizationUrl: status.authorizationUrl };
      },
      {
        validator: () => {
          if (status.state !== 'awaiting_reauthorization')
            throw new Error(`the downgrade is ${status.state}`);
          const left = Date.parse(status.authorizationExpiresAt ?? '') - Date.now();
          if (left > CONSENT_REQUEST_RENEWAL_MARGIN_MS) throw new Error('the consent request still works');
          if (status.prompt >= status.maxPrompts) throw new Error('no prompt is left to ask again');
        },
      },
    );
  }

  /** Revokes the person's Read/Write authorization: Cronofy's first step, before they are asked again. */
  async revoke(): Promise<void> {
    this.enter('revoking', NOT_WAITING);
    const { credentialRef, sub } = this.input;
    await cronofyActivities().revokeAuthorization(credentialRef ? { credentialRef } : { sub });
  }

  /** The person, as reauthorization.ts asks them: their own account (`sub`), reminders through the webhook. */
  person(): Human<{ credentialRef: string; sub: string; providerName: string; providerService?: string }> {
    const cronofy = cronofyActivities();
    return {
      who: 'the person',
      asking: this.input,
      createRequest: (prompt, { expiresAt, deadline }) =>
        this.#service.createAuthorizationRequest({
          ...thisRun(),
          prompt,
          providerHint: this.input.providerHint,
          expiresAt,
          deadline,
        }),
      waiting: (prompt, { authorizationUrl, link }, { expiresAt, deadline }) =>
        this.#showLink(
          'awaiting_reauthorization',
          { prompt, authorizationUrl, link, deadline: new Date(deadline).toISOString() },
          expiresAt,
        ),
      remind: () => this.#remind(),
      verifying: () => this.enter('verifying', NOT_WAITING),
      exchange: async (codeRef) => {
        const grant = await cronofy.exchangeAuthorizationCode({
          codeRef,
          workflowId: this.status.workflowId,
        });
        this.status.providerName = grant.providerName;
        return grant;
      },
      isAskedAccount: (grant) => grant.sub === this.input.sub,
      revoke: (credentialRef) => cronofy.revokeAuthorization({ credentialRef }),
    };
  }

  /**
   * For `revokeWhenOpened`: the `openLink` update's handler, and `opened()`, which hands out the service's own link
   * and waits (with reminders) until the person opens it or its deadline passes; nothing is revoked meanwhile.
   */
  handleOpenLink(): { opened(): Promise<boolean> } {
    const link = { nonce: '', opened: false };
    const waitingForOpen = ['awaiting_link_open', 'revoking'];
    setHandler(
      openLink,
      async () => {
        link.opened = true;
        await condition(() => !waitingForOpen.includes(this.status.state));
        if (this.status.state !== 'awaiting_reauthorization' || !this.status.authorizationUrl) {
          throw notWaiting(this.status.state);
        }
        return { authorizationUrl: this.status.authorizationUrl };
      },
      {
        validator: ({ nonce }) => {
          if (!link.nonce || nonce !== link.nonce)
            throw new Error('this link was not issued by this downgrade');
          if (![...waitingForOpen, 'awaiting_reauthorization'].includes(this.status.state)) {
            throw new Error(`the downgrade is ${this.status.state}`);
          }
        },
      },
    );
    return {
      opened: async () => {
        const expiresAt = Date.now() + this.input.deadlineMs;
        const created = await this.#service.createOpenLink({ ...thisRun(), expiresAt });
        link.nonce = created.nonce;
        await this.#showLink('awaiting_link_open', { authorizationUrl: created.url }, expiresAt);
        const opened = await waitWithReminders(
          () => (link.opened ? true : undefined),
          expiresAt,
          this.input.reminderIntervalMs,
          () => this.#remind(),
        );
        return opened === true;
      },
    };
  }

  /** Shows the person's link in the status and sends it to the application. */
  async #showLink(
    state: 'awaiting_reauthorization' | 'awaiting_link_open',
    details: Partial<DowngradeStatus> & { authorizationUrl: string },
    expiresAt: number,
  ): Promise<void> {
    this.enter(state, {
      ...details,
      authorizationExpiresAt: new Date(expiresAt).toISOString(),
      waitingSince: new Date().toISOString(),
    });
    await this.#notify({ type: 'authorization_required', status: this.status });
  }

  async #remind(): Promise<void> {
    this.status.remindersSent += 1;
    await this.#notify({ type: 'reminder', status: this.status });
  }
}

/** An update's answer when the person's prompt it asks about is not waiting: final, the caller shows the state. */
function notWaiting(state: DowngradeState): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`the downgrade is ${state}`, 'DowngradeNotWaiting');
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
