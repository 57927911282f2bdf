import { endUsersRunOnError } from './runEnding.js';
import {
  ActivityFailure,
  continueAsNew,
  log,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { applicationNotifier, cronofyActivities, serviceActivities } from './activityProxies.js';
import { domainUsersQuery, USERS_LINK_TEXT, workflowListLink } from '../contracts/temporalUiLinks.js';
import { showState } from './showState.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import {
  domainUpdates,
  getEnterpriseStatus,
  type EnterpriseDowngradeInput,
  type EnterprisePhase,
  type EnterpriseStatus,
  type UsersProgress,
} from './enterpriseDefinitions.js';
import { describeDecisions, describeUsers, OperatorControls } from './operatorControls.js';
import {
  listenForCallbacks,
  NOT_WAITING,
  reauthorize,
  thisRun,
  type Grant,
  type Human,
} from './reauthorization.js';
import { historyFull, moveUsersInWindow } from './usersLoop.js';
import { UsersWindow, type Batch } from './usersWindow.js';

/**
 * Moves a whole Enterprise Connect domain to Free/Busy: (an operator approves the preview) → revoke the service
 * account (its users were captured first) → ask the administrator to authorize again with delegated Free/Busy
 * (reauthorization.ts) → one workflow per user, started in batches of 50 within a sliding window, each requesting
 * access and recording its outcome → report. Long domains continue as new, carrying only their progress, so 5 users
 * and 50,000 run the same code.
 */
export async function enterpriseDowngrade(input: EnterpriseDowngradeInput): Promise<EnterpriseStatus> {
  const run = new DomainRun(input);
  // A run continued as new carries on the same downgrade.
  if (workflowInfo().continuedFromExecutionRunId === undefined) countDowngradeStarted('enterprise');
  const inbox = listenForCallbacks();

  try {
    if (input.inlineUsers) {
      Object.assign(run.status, await serviceActivities().captureUsers({ emails: input.inlineUsers }));
    }
    let progress = input.progress;
    if (!progress && input.approval) {
      const refused = await run.controls.awaitApproval(input.approval);
      if (refused) return run.finish(refused.phase, refused.reason);
    }
    if (!progress) {
      await run.revokeServiceAccount();
      const outcome = await reauthorize(run.administrator(), inbox);
      if (!('grant' in outcome)) return run.finish(outcome.state, outcome.reason);
      const { credentialRef: serviceAccountRef, providerName } = outcome.grant;
      run.status.serviceAccountRef = serviceAccountRef;
      progress = { serviceAccountRef, providerName, nextPosition: 0, counts: {}, runs: run.status.runs };
    }
    return await run.moveUsers(progress);
  } catch (error) {
    return await endUsersRunOnError(error, run);
  }
}

/** One run of a domain's downgrade: its status, its operators' controls and its users phase. */
class DomainRun {
  readonly status: EnterpriseStatus;
  readonly controls: OperatorControls<EnterpriseStatus>;
  readonly #service = serviceActivities();
  readonly #cronofy = cronofyActivities();
  readonly #notify: ReturnType<typeof applicationNotifier>;
  /** The users phase's window, once it has begun: cancelling the downgrade cancels the users in flight. */
  #users: UsersWindow | undefined;

  constructor(private readonly input: EnterpriseDowngradeInput) {
    this.#notify = applicationNotifier({ email: input.adminEmail });
    const progress = input.progress;
    this.status = {
      workflowId: workflowInfo().workflowId,
      domain: input.domain,
      captureId: input.captureId ?? '',
      phase: progress ? 'moving_users' : 'revoking',
      prompt: 0,
      userCount: input.userCount ?? 0,
      providerName: progress?.providerName,
      serviceAccountRef: progress?.serviceAccountRef,
      started: progress?.nextPosition ?? 0,
      inFlight: 0,
      counts: { ...progress?.counts },
      runs: (progress?.runs ?? 0) + 1,
      paused: progress?.control?.paused,
      approval: progress?.approval,
    };
    this.controls = new OperatorControls(this.status, {
      subject: `the downgrade of ${input.domain}`,
      input,
      updates: domainUpdates,
      enter: (phase, details) => this.enter(phase as EnterprisePhase, details),
    });
    setHandler(getEnterpriseStatus, () => this.status);
  }

  /** Revokes the service account (which revokes its users): Cronofy's first step, before the administrator. */
  async revokeServiceAccount(): Promise<void> {
    this.enter('revoking');
    const { serviceAccountRef, serviceAccountSub } = this.input;
    await this.#cronofy.revokeAuthorization(
      serviceAccountRef ? { credentialRef: serviceAccountRef } : { sub: serviceAccountSub! },
    );
  }

  enter(phase: EnterprisePhase, details: Partial<EnterpriseStatus> = {}): void {
    Object.assign(this.status, details, { phase });
    showState(phase, describeStatus(this.status, this.input.temporalUiUrl), this.status.providerName);
  }

  finish(phase: EnterprisePhase, reason?: string): EnterpriseStatus {
    this.enter(phase, { reason, paused: undefined, ...NOT_WAITING });
    countDowngradeFinished('enterprise', phase);
    return this.status;
  }

  /**
   * The domain's administrator, as reauthorization.ts asks them: the asked account is a service account of this
   * domain, and reminders reach the application's webhook as they do for a person.
   */
  administrator(): Human<Grant & { domain?: string }> {
    return {
      who: 'the administrator',
      asking: this.input,
      createRequest: (prompt, { expiresAt }) =>
        this.#service.createEnterpriseAuthorizationRequest({ ...thisRun(), prompt, expiresAt }),
      waiting: async (prompt, { authorizationUrl }, { expiresAt }) => {
        this.enter('awaiting_admin', {
          prompt,
          authorizationUrl,
          authorizationExpiresAt: new Date(expiresAt).toISOString(),
          waitingSince: new Date().toISOString(),
        });
        await this.#notify({ type: 'authorization_required', status: this.status });
      },
      remind: async () => {
        log.info('Still waiting for the domain administrator', { prompt: this.status.prompt });
        await this.#notify({ type: 'reminder', status: this.status });
      },
      verifying: () => this.enter('verifying_admin', NOT_WAITING),
      exchange: async (codeRef) => {
        const grant = await this.#cronofy.exchangeServiceAccountCode({
          codeRef,
          workflowId: this.status.workflowId,
        });
        this.status.providerName = grant.providerName;
        return grant;
      },
      // A userinfo without a domain cannot say; Cronofy's names one for every service account.
      isAskedAccount: (grant) =>
        !grant.domain || grant.domain.toLowerCase() === this.input.domain.toLowerCase(),
      revoke: (credentialRef) => this.#cronofy.revokeAuthorization({ credentialRef }),
    };
  }

  async moveUsers(progress: UsersProgress): Promise<EnterpriseStatus> {
    this.enter('moving_users');
    const window = (this.#users = new UsersWindow(this.input.window, this.status.userCount, progress));
    if (this.controls.paused) this.enter('paused');
    await moveUsersInWindow(window, this.controls, this.status, {
      show: () => {
        Object.assign(this.status, { counts: window.counts, inFlight: window.inFlight });
        setCurrentDetails(describeStatus(this.status, this.input.temporalUiUrl));
      },
      historyFull: () => historyFull(this.input.historyEventBudget),
      continueAsNew: () =>
        continueAsNew<typeof enterpriseDowngrade>({
          ...this.input,
          inlineUsers: undefined,
          captureId: this.status.captureId,
          userCount: this.status.userCount,
          progress: {
            ...progress,
            nextPosition: window.next,
            counts: window.counts,
            runs: this.status.runs,
            control: this.controls.control.carry(),
            approval: this.status.approval,
          },
        }),
      startBatch: async (batch) => {
        const started = await this.#startUsers(progress, batch);
        return { followUp: this.#requestAccess(progress, started, batch.from) };
      },
      countOutcomes: () => this.#service.countUserOutcomes({ captureId: this.status.captureId }),
      tripped: () => this.#notify({ type: 'domain_paused', status: this.status }),
    });
    return this.finish('completed');
  }

  /** Cancels the users that were started and have no outcome yet. */
  async cancelUsersInFlight(): Promise<void> {
    if (!this.#users) return;
    await this.#service.cancelUsers({
      parentWorkflowId: this.status.workflowId,
      captureId: this.status.captureId,
      before: this.#users.next,
    });
  }

  /** Starts the workflows of the batch's users; what each one's access request needs. */
  async #startUsers(progress: UsersProgress, { from, size }: Batch) {
    const started = await this.#service.startUsers({
      domain: this.input.domain,
      captureId: this.status.captureId,
      from,
      size,
      taskQueue: workflowInfo().taskQueue,
      user: {
        parentWorkflowId: this.status.workflowId,
        serviceAccountRef: progress.serviceAccountRef,
        userDeadlineMs: this.input.userDeadlineMs,
        maxUserRequests: this.input.maxUserRequests,
      },
    });
    this.status.started += size;
    return started;
  }

  /** Asks Cronofy for the access of all the batch's users in one call. */
  async #requestAccess(progress: UsersProgress, runIds: string[], from: number): Promise<void> {
    try {
      await this.#cronofy.requestUserAccess({
        serviceAccountRef: progress.serviceAccountRef,
        batch: { parentWorkflowId: this.status.workflowId, captureId: this.status.captureId, from, runIds },
        expiresAt: Date.now() + 2 * this.input.userDeadlineMs,
      });
    } catch (error) {
      // Each user asks again on its own when no access arrives by its deadline.
      if (!(error instanceof ActivityFailure)) throw error;
      log.warn('Batch access request failed; the users will be asked again one by one', {
        from,
        size: runIds.length,
      });
    }
  }
}

/** What the Temporal UI shows operators as the run's current details. */
function describeStatus(status: EnterpriseStatus, temporalUiUrl: string | undefined): string {
  const lines = [
    `**${status.phase}** · domain ${status.domain} · run ${status.runs}`,
    ...describeDecisions(status),
  ];
  if (status.waitingSince) lines.push(`Waiting for the administrator since ${status.waitingSince}`);
  if (status.authorizationExpiresAt) lines.push(`Consent link expires ${status.authorizationExpiresAt}`);
  if (status.providerName) lines.push(`Service account provider: ${status.providerName}`);
  lines.push(describeUsers(status));
  const users = domainUsersQuery(status.domain);
  // The query as code, which the UI's markdown leaves as typed (it curls quotes in plain text).
  lines.push(
    temporalUiUrl
      ? `Their workflows: [${USERS_LINK_TEXT}](${workflowListLink(temporalUiUrl, workflowInfo().namespace, users)}) \`${users}\``
      : `Their workflows: \`${users}\``,
  );
  if (status.reason) lines.push(`Reason: ${status.reason}`);
  return lines.join('\n\n');
}
