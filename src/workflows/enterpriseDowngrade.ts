import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { applicationNotifier, cronofyActivities, serviceActivities } from './activityProxies.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import {
  FREE_BUSY_PROVIDERS,
  reauthorizationCallback,
  searchAttributes,
  type ReauthorizationCallback,
} from './definitions.js';
import {
  approveDowngrade,
  getEnterpriseStatus,
  pauseDowngrade,
  rejectDowngrade,
  resumeDowngrade,
  userFinished,
  type EnterpriseDowngradeInput,
  type EnterprisePhase,
  type EnterpriseStatus,
  type EnterpriseUserResult,
  type UsersProgress,
} from './enterpriseDefinitions.js';
import { describeDecisions, OperatorControls } from './operatorControls.js';
import { moveUsersInWindow } from './usersLoop.js';
import { enterpriseUserDowngrade } from './enterpriseUserDowngrade.js';
import { LegacyChildrenWindow } from './legacyChildrenWindow.js';
import { UsersWindow, type Batch } from './usersWindow.js';
import { waitWithReminders } from './waiting.js';

/**
 * Continue as new after this many events, far below Temporal's 10,240-event warning: the budget is also what a
 * run costs to replay when the worker has pushed it out of its cache.
 */
const DEFAULT_HISTORY_EVENT_BUDGET = 2_000;

/**
 * The patch that starts each batch of users from an activity and reads their outcomes from the store, instead of
 * starting a child per user and waiting for each child's signal. The domain's history then grows by batches and
 * reads, not by users, and nothing signals it while it continues as new: under a steady stream of child signals the
 * server kept refusing its continue-as-new (a completion that missed a signal is refused), and the domain stalled
 * until its window had drained. Runs whose users phase began before it finish the old way (legacyChildrenWindow.ts).
 */
export const USERS_STARTED_BY_ACTIVITY = 'users-started-by-activity';

/**
 * The patch that counts a domain's `downgrade_finished` one workflow task before the one that closes it. The last
 * child's completion often reaches the parent while its closing task is in flight; the server then rejects that
 * task, it runs again (not as a replay), and a count made in it counted twice. A task that only starts a timer is
 * never rejected for that, and when the closing task runs again the count before it is replayed, not recorded.
 */
export const COUNT_FINISH_BEFORE_CLOSING = 'count-finish-before-closing';

/**
 * Moves a whole Enterprise Connect domain to Free/Busy: revoke the service account (its users were captured
 * first) → the administrator authorizes again with delegated Free/Busy → exchange → verify the provider → one child
 * workflow per user, in a sliding window, requesting access in batches of 50 → report per-user outcomes. Long
 * domains continue as new, carrying only their progress, so 5 users and 50,000 run the same code.
 */
export async function enterpriseDowngrade(input: EnterpriseDowngradeInput): Promise<EnterpriseStatus> {
  const cronofy = cronofyActivities();
  const service = serviceActivities();
  const info = workflowInfo();
  const status: EnterpriseStatus = {
    workflowId: info.workflowId,
    domain: input.domain,
    captureId: input.captureId ?? '',
    phase: input.progress ? 'moving_users' : 'revoking',
    prompt: 0,
    userCount: input.userCount ?? 0,
    providerName: input.progress?.providerName,
    serviceAccountRef: input.progress?.serviceAccountRef,
    started: input.progress?.nextPosition ?? 0,
    inFlight: input.progress?.inFlight.length ?? 0,
    counts: { ...input.progress?.counts },
    runs: (input.progress?.runs ?? 0) + 1,
    paused: input.progress?.control?.paused,
    approval: input.progress?.approval,
  };
  let pending: { nonce: string; callback?: ReauthorizationCallback } | undefined;
  const finished: EnterpriseUserResult[] = [];
  /** The users phase's window, once it has begun: cancelling the downgrade cancels the users in flight. */
  let users: UsersWindow | undefined;
  let slidingWindow: LegacyChildrenWindow | undefined;
  const notify = applicationNotifier();
  // A run continued as new carries on the same downgrade.
  if (info.continuedFromExecutionRunId === undefined) countDowngradeStarted('enterprise');

  setHandler(getEnterpriseStatus, () => status);
  const controls = new OperatorControls(status, {
    subject: `the downgrade of ${input.domain}`,
    enter: (phase, details) => enter(phase as EnterprisePhase, details),
    breaker: input.breaker,
    carried: input.progress?.control,
    previewId: input.approval?.previewId,
    cannotPause: () =>
      slidingWindow ? 'this run moves its users the old way, which cannot pause' : undefined,
  });
  controls.register({
    approve: approveDowngrade,
    reject: rejectDowngrade,
    pause: pauseDowngrade,
    resume: resumeDowngrade,
  });
  setHandler(userFinished, (result) => void finished.push(result));
  setHandler(reauthorizationCallback, (callback) => {
    if (
      pending &&
      !pending.callback &&
      callback.prompt === status.prompt &&
      callback.nonce === pending.nonce
    ) {
      pending.callback = callback;
    }
  });

  const enter = (phase: EnterprisePhase, details: Partial<EnterpriseStatus> = {}) => {
    Object.assign(status, details, { phase });
    setCurrentDetails(describeStatus(status));
    upsertSearchAttributes([
      { key: searchAttributes.state, value: phase },
      ...(status.providerName ? [{ key: searchAttributes.provider, value: status.providerName }] : []),
    ]);
  };
  /** Counts the downgrade finished, one workflow task before the one that closes it (COUNT_FINISH_BEFORE_CLOSING). */
  const countFinished = async (phase: EnterprisePhase) => {
    countDowngradeFinished('enterprise', phase);
    if (patched(COUNT_FINISH_BEFORE_CLOSING)) await CancellationScope.nonCancellable(() => sleep(1));
  };
  const finish = async (phase: EnterprisePhase, reason?: string): Promise<EnterpriseStatus> => {
    enter(phase, {
      reason,
      paused: undefined,
      authorizationUrl: undefined,
      authorizationExpiresAt: undefined,
      waitingSince: undefined,
    });
    await countFinished(phase);
    return status;
  };

  try {
    if (input.inlineUsers) {
      Object.assign(status, await service.captureUsers({ emails: input.inlineUsers }));
    }
    let progress = input.progress;
    if (!progress && input.approval) {
      const refused = await controls.awaitApproval(input.approval);
      if (refused) return await finish(refused.phase, refused.reason);
    }
    if (!progress) {
      enter('revoking');
      await cronofy.revokeAuthorization(
        input.serviceAccountRef
          ? { credentialRef: input.serviceAccountRef }
          : { sub: input.serviceAccountSub! },
      );
      const admin = await reauthorizeAdministrator();
      if ('phase' in admin) return await finish(admin.phase, admin.reason);
      progress = { ...admin, nextPosition: 0, inFlight: [], counts: {}, runs: status.runs };
    }
    return await moveUsers(progress);
  } catch (error) {
    if (isCancellation(error)) {
      enter('cancelled', { reason: 'cancelled by request' });
      await countFinished('cancelled');
      await CancellationScope.nonCancellable(async () => {
        if (users) {
          await service.cancelUsers({
            parentWorkflowId: info.workflowId,
            captureId: status.captureId,
            before: users.next,
          });
        }
        // allSettled: a place may be reserved for a child that was never started.
        await Promise.allSettled(
          [...(slidingWindow?.inFlight ?? [])].map((position) =>
            getExternalWorkflowHandle(legacyChildId(position)).cancel(),
          ),
        );
      });
      throw error;
    }
    if (error instanceof ActivityFailure) {
      return await finish('failed', `${error.activityType}: ${error.cause?.message ?? error.message}`);
    }
    throw error;
  }

  async function reauthorizeAdministrator(): Promise<
    { serviceAccountRef: string; providerName: string } | { phase: EnterprisePhase; reason: string }
  > {
    while (status.prompt < input.maxPrompts) {
      const prompt = status.prompt + 1;
      const expiresAt = Date.now() + input.deadlineMs;
      const request = await service.createEnterpriseAuthorizationRequest({
        workflowId: info.workflowId,
        runId: info.runId,
        firstRunId: info.firstExecutionRunId,
        prompt,
        expiresAt,
      });
      pending = { nonce: request.nonce };
      enter('awaiting_admin', {
        prompt,
        authorizationUrl: request.authorizationUrl,
        authorizationExpiresAt: new Date(expiresAt).toISOString(),
        waitingSince: new Date().toISOString(),
      });
      const callback = await waitWithReminders(
        () => pending?.callback,
        expiresAt,
        input.reminderIntervalMs,
        async () => {
          log.info('Still waiting for the domain administrator', { prompt });
        },
      );
      if (!callback)
        return { phase: 'expired', reason: 'the administrator did not re-authorize before the deadline' };
      if ('error' in callback) {
        return callback.error === 'access_denied'
          ? { phase: 'denied', reason: 'the administrator declined' }
          : { phase: 'failed', reason: `Cronofy redirected with error ${callback.error}` };
      }
      enter('verifying_admin', {
        authorizationUrl: undefined,
        authorizationExpiresAt: undefined,
        waitingSince: undefined,
      });
      const grant = await cronofy.exchangeServiceAccountCode({
        codeRef: callback.codeRef,
        workflowId: info.workflowId,
      });
      status.providerName = grant.providerName;
      if ((FREE_BUSY_PROVIDERS as readonly string[]).includes(grant.providerName)) {
        status.serviceAccountRef = grant.credentialRef;
        return { serviceAccountRef: grant.credentialRef, providerName: grant.providerName };
      }
      // A Read/Write service account would hand every user Read/Write again: take it back and ask again.
      await cronofy.revokeAuthorization({ credentialRef: grant.credentialRef });
    }
    return {
      phase: 'read_write_kept',
      reason: `Read/Write was chosen again on all ${input.maxPrompts} prompts`,
    };
  }

  async function moveUsers(progress: UsersProgress): Promise<EnterpriseStatus> {
    enter('moving_users');
    // A run carrying children of the old way in flight finishes them the old way.
    if (progress.inFlight.length > 0 || !patched(USERS_STARTED_BY_ACTIVITY))
      return moveUsersAsChildren(progress);
    users = new UsersWindow(input.window, status.userCount, progress);
    if (controls.paused) enter('paused');
    const window = users;
    await moveUsersInWindow(window, controls, status, {
      show: () => {
        Object.assign(status, { counts: window.counts, inFlight: window.inFlight });
        setCurrentDetails(describeStatus(status));
      },
      historyFull,
      continueAsNew: () =>
        continueAsNew<typeof enterpriseDowngrade>({
          ...continuation(),
          progress: {
            ...progress,
            nextPosition: window.next,
            counts: window.counts,
            runs: status.runs,
            control: controls.control.carry(),
            approval: status.approval,
          },
        }),
      startBatch: async (batch) => {
        const started = await startUsers(progress, batch);
        return { followUp: requestAccess(progress, started, batch.from) };
      },
      countOutcomes: () => service.countUserOutcomes({ captureId: status.captureId }),
      tripped: () => notify({ type: 'domain_paused', status }),
    });
    return await finish('completed');
  }

  /** Starts the workflows of the batch's users; what each one's access request needs. */
  async function startUsers(progress: UsersProgress, { from, size }: Batch) {
    const started = await service.startUsers({
      domain: input.domain,
      captureId: status.captureId,
      from,
      size,
      taskQueue: info.taskQueue,
      user: {
        parentWorkflowId: info.workflowId,
        serviceAccountRef: progress.serviceAccountRef,
        userDeadlineMs: input.userDeadlineMs,
        maxUserRequests: input.maxUserRequests,
      },
    });
    status.started += size;
    return started;
  }

  /** Asks Cronofy for the access of all the batch's users in one call. */
  async function requestAccess(
    progress: UsersProgress,
    started: Parameters<typeof cronofy.requestUserAccess>[0]['users'],
    from: number,
  ): Promise<void> {
    try {
      await cronofy.requestUserAccess({
        serviceAccountRef: progress.serviceAccountRef,
        users: started,
        expiresAt: Date.now() + 2 * input.userDeadlineMs,
      });
    } catch (error) {
      // Each user asks again on its own when no access arrives by its deadline.
      if (!(error instanceof ActivityFailure)) throw error;
      log.warn('Batch access request failed; the users will be asked again one by one', {
        from,
        size: started.length,
      });
    }
  }

  /** Checked on every pass: a window that refills as fast as it drains would otherwise never get here. */
  function historyFull(): boolean {
    return (
      workflowInfo().continueAsNewSuggested ||
      workflowInfo().historyLength > (input.historyEventBudget ?? DEFAULT_HISTORY_EVENT_BUDGET)
    );
  }

  function continuation(): EnterpriseDowngradeInput {
    return { ...input, inlineUsers: undefined, captureId: status.captureId, userCount: status.userCount };
  }

  /** The users phase of runs before USERS_STARTED_BY_ACTIVITY: a child per user, each signalling its result. */
  async function moveUsersAsChildren(progress: UsersProgress): Promise<EnterpriseStatus> {
    slidingWindow = new LegacyChildrenWindow(input.window, status.userCount, progress);
    status.counts = slidingWindow.counts;
    // Starting a batch's children takes several round trips: more than one batch may be starting at once, so the
    // window stays full. A failure is thrown from the loop, not from the batch's own promise.
    let batchesStarting = 0;
    const batchFailures: unknown[] = [];
    for (;;) {
      for (const result of finished.splice(0)) slidingWindow.finish(result);
      if (batchFailures.length > 0) throw batchFailures[0];
      status.inFlight = slidingWindow.inFlight.size;
      setCurrentDetails(describeStatus(status));
      if (slidingWindow.done) break;

      // Once due, no new batch starts, and the run continues as new when the ones starting have started.
      const full = historyFull();
      if (full && batchesStarting === 0) {
        await continueAsNew<typeof enterpriseDowngrade>({
          ...continuation(),
          progress: { ...progress, ...slidingWindow.carry(), runs: status.runs },
        });
      }
      const batch = full ? undefined : slidingWindow.takeBatch();
      if (batch) {
        batchesStarting += 1;
        void startChildren(progress, batch)
          .catch((error: unknown) => void batchFailures.push(error))
          .finally(() => (batchesStarting -= 1));
        continue;
      }
      const starting = batchesStarting;
      await condition(() => finished.length > 0 || batchesStarting < starting || batchFailures.length > 0);
    }
    return await finish('completed');
  }

  /**
   * Starts one child per user of the batch (their places in the window are already taken), then asks Cronofy
   * for all of them in one call.
   */
  async function startChildren(progress: UsersProgress, { from, size }: Batch): Promise<void> {
    const emails = await service.loadUserPage({ captureId: status.captureId, offset: from, limit: size });
    if (emails.length !== size) {
      throw ApplicationFailure.nonRetryable(
        `capture ${status.captureId} has ${emails.length} users at ${from}, not ${size}`,
      );
    }
    const users = emails.map((email, index) => ({
      email,
      position: from + index,
      workflowId: legacyChildId(from + index),
    }));
    const started = await Promise.all(
      users.map(async (user) => {
        const child = await startChild(enterpriseUserDowngrade, {
          workflowId: user.workflowId,
          parentClosePolicy: 'ABANDON',
          typedSearchAttributes: [
            { key: searchAttributes.kind, value: 'enterprise_user' },
            { key: searchAttributes.domain, value: input.domain },
            { key: searchAttributes.state, value: 'awaiting_user_access' },
          ],
          args: [
            {
              domain: input.domain,
              captureId: status.captureId,
              email: user.email,
              position: user.position,
              parentWorkflowId: info.workflowId,
              serviceAccountRef: progress.serviceAccountRef,
              userDeadlineMs: input.userDeadlineMs,
              maxUserRequests: input.maxUserRequests,
            },
          ],
        });
        return {
          email: user.email,
          workflowId: user.workflowId,
          // A child just started is the first run of its chain.
          runId: child.firstExecutionRunId,
          firstRunId: child.firstExecutionRunId,
          request: 1,
        };
      }),
    );
    status.started += users.length;
    await requestAccess(progress, started, from);
  }

  function legacyChildId(position: number): string {
    return `${info.workflowId}-user-${position}`;
  }
}

/** What the Temporal UI shows operators as the run's current details. */
function describeStatus(status: EnterpriseStatus): string {
  const counts = Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
  const lines = [
    `**${status.phase}** · domain ${status.domain} · run ${status.runs}`,
    ...describeDecisions(status),
  ];
  if (status.waitingSince) lines.push(`Waiting for the administrator since ${status.waitingSince}`);
  if (status.authorizationExpiresAt) lines.push(`Consent link expires ${status.authorizationExpiresAt}`);
  if (status.providerName) lines.push(`Service account provider: ${status.providerName}`);
  lines.push(
    `Users: ${status.started} of ${status.userCount} started, ${status.inFlight} in flight; ${counts || 'none finished'}`,
  );
  if (status.started > 0) {
    lines.push(`Their workflows: CronofyDomain = "${status.domain}" AND DowngradeKind = "enterprise_user"`);
  }
  if (status.reason) lines.push(`Reason: ${status.reason}`);
  return lines.join('\n\n');
}
