import { randomBytes } from 'node:crypto';
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { CancelledFailure, TypedSearchAttributes } from '@temporalio/common';
import type { CredentialStore, StoredCredentials } from './store/credentialStore.js';
import {
  consentLink,
  getStatus,
  individualDowngradeId,
  searchAttributes,
  type DowngradeResult,
  type DowngradeStatus,
  type FreeBusyProvider,
  type IndividualDowngradeInput,
} from './workflows/definitions.js';
import type { individualDowngrade } from './workflows/individualDowngrade.js';
import type { EnterpriseUsers, ReportRow, UserOutcome } from './store/enterpriseUsers.js';
import {
  approveDowngrade,
  enterpriseDowngradeId,
  getEnterpriseStatus,
  pauseDowngrade,
  rejectDowngrade,
  resumeDowngrade,
  type BreakerThresholds,
  type EnterpriseDowngradeInput,
  type EnterpriseStatus,
  type OperatorDecision,
} from './workflows/enterpriseDefinitions.js';
import type { enterpriseDowngrade } from './workflows/enterpriseDowngrade.js';
import type { inspectServiceAccount } from './workflows/serviceAccountInspection.js';
import { buildPreview, type EnterprisePreview } from './enterprisePreview.js';
import { operatedRunHasEnded } from './workflows/endings.js';
import { DowngradeNotFoundError, DowngradeRefusedError, PreviewNotFoundError } from './clientErrors.js';
import {
  DEFAULT_APPROVAL_DEADLINE_MS,
  DEFAULT_BREAKER,
  runningRunId,
  sendOperatorUpdate,
} from './operatorUpdates.js';

export interface DowngradeDefaults {
  deadlineMs: number;
  reminderIntervalMs: number;
  maxPrompts: number;
  /** How long one consent request works; by default as long as its prompt waits (IndividualDowngradeInput). */
  consentRequestLifetimeMs?: number;
}

export interface StartIndividualDowngrade {
  /** The Cronofy account (`acc_…`). */
  sub: string;
  userId?: string;
  /** The current Read/Write refresh token; stored encrypted and revoked. Without it the downgrade revokes by sub. */
  refreshToken?: string;
  /** The person's address: with email configured they receive the link, reminders and the confirmation. */
  email?: string;
  /** How long one consent request works (see IndividualDowngradeInput); the service's `link` outlives it. */
  consentRequestLifetimeMs?: number;
  providerHint?: FreeBusyProvider;
  deadlineMs?: number;
  reminderIntervalMs?: number;
  maxPrompts?: number;
  /**
   * Revoke only when the person opens the link (`authorizationUrl` is then the service's own page, which revokes
   * and sends them on to Cronofy): someone who never opens it keeps their connection, and the run ends
   * `link_not_opened`. Default false: revoke at start.
   */
  revokeWhenOpened?: boolean;
}

export interface EnterpriseDefaults {
  userDeadlineMs: number;
  maxUserRequests: number;
  window: number;
}

export interface PreviewEnterpriseDowngrade {
  domain: string;
  /** Every user connected through the service account, page by page. */
  users: Iterable<readonly string[]> | AsyncIterable<readonly string[]>;
  /** The current service account: its refresh token (stored encrypted; read, not revoked) or its `ser_…` sub. */
  serviceAccountRefreshToken?: string;
  serviceAccountSub?: string;
}

export interface StartEnterpriseDowngrade {
  domain: string;
  /**
   * Start from this preview: its users and service account. Without it, and unless `requireApproval` is false,
   * the client previews first and the run waits for an operator to approve that preview.
   */
  previewId?: string;
  /** Every user connected through the service account, inline or page by page (captured before revoking). */
  users?: Iterable<readonly string[]> | AsyncIterable<readonly string[]>;
  /** The current service account: its refresh token (stored encrypted, then revoked) or its `ser_…` sub. */
  serviceAccountRefreshToken?: string;
  serviceAccountSub?: string;
  /** The administrator's address: with email configured they receive their link and reminders. */
  adminEmail?: string;
  deadlineMs?: number;
  reminderIntervalMs?: number;
  maxPrompts?: number;
  userDeadlineMs?: number;
  maxUserRequests?: number;
  window?: number;
  historyEventBudget?: number;
  /** Wait in `awaiting_approval` until an operator approves (default true); false revokes at once. */
  requireApproval?: boolean;
  /** How long a run waits for approval before it ends `expired` (default 7 days). */
  approvalDeadlineMs?: number;
  /** When the domain pauses itself (default 20 failures that are at least 40 % of the finished users); false: never. */
  breaker?: BreakerThresholds | false;
}

export interface DowngradeClientOptions {
  temporal: Client;
  taskQueue: string;
  defaults: DowngradeDefaults;
  enterpriseDefaults?: EnterpriseDefaults;
  /**
   * Needed to hand over tokens (a refresh token to revoke, the new credentials). The embedded file database
   * admits one process at a time: a client in another process than the service needs PostgreSQL.
   */
  store?: CredentialStore;
  /** Needed for Enterprise Connect: where users are captured, previews kept and outcomes recorded. */
  enterpriseUsers?: EnterpriseUsers;
  /** The worker's limit (CRONOFY_CALLS_PER_SECOND), for the time a preview estimates; default 8. */
  cronofyCallsPerSecond?: number;
  /** The Temporal UI operators use: a domain's current details link to its users' runs there. */
  temporalUiUrl?: string;
}

/** Users that may travel inline in a workflow's input (well under Temporal's 2 MB payload limit). */
const MAX_INLINE_USERS = 5_000;

const ENTERPRISE_DEFAULTS: EnterpriseDefaults = {
  userDeadlineMs: 3_600_000,
  maxUserRequests: 3,
  window: 500,
};

export { DowngradeNotFoundError, DowngradeRefusedError, PreviewNotFoundError };

/** The typed API backend services use to start, follow and cancel downgrades. */
export class DowngradeClient {
  private readonly temporal: Client;
  private readonly taskQueue: string;
  private readonly defaults: DowngradeDefaults;
  private readonly store?: CredentialStore;
  private readonly enterpriseUsers?: EnterpriseUsers;
  private readonly enterpriseDefaults: EnterpriseDefaults;
  private readonly cronofyCallsPerSecond: number;
  private readonly temporalUiUrl: string | undefined;

  constructor(options: DowngradeClientOptions) {
    this.temporal = options.temporal;
    this.taskQueue = options.taskQueue;
    this.defaults = options.defaults;
    this.store = options.store;
    this.enterpriseUsers = options.enterpriseUsers;
    this.enterpriseDefaults = options.enterpriseDefaults ?? ENTERPRISE_DEFAULTS;
    this.cronofyCallsPerSecond = options.cronofyCallsPerSecond ?? 8;
    this.temporalUiUrl = options.temporalUiUrl;
  }

  /** Starting the same user's downgrade again while it runs returns the running one. */
  async startIndividualDowngrade(
    request: StartIndividualDowngrade,
  ): Promise<{ workflowId: string; runId: string }> {
    const options = await this.individualStartOptions(request);
    const handle = await this.temporal.workflow.start<typeof individualDowngrade>(
      'individualDowngrade',
      options,
    );
    return { workflowId: options.workflowId, runId: handle.firstExecutionRunId };
  }

  /**
   * Starts the downgrade (or finds the running one of the same user) and answers with the person's link in the same
   * call, so that a backend's request handler can send the person there at once: an update sent with the start
   * (update-with-start), which completes once the workflow has made the link. A downgrade that ended before it had
   * one is refused (DowngradeRefusedError, with the reason).
   */
  async startIndividualDowngradeWithLink(request: StartIndividualDowngrade): Promise<{
    workflowId: string;
    authorizationUrl: string;
    authorizationExpiresAt: string;
    /** The service's link to the current consent request, which outlives any one request: hand the person this. */
    link?: string;
  }> {
    const options = await this.individualStartOptions(request);
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof individualDowngrade>(
      'individualDowngrade',
      options,
    );
    try {
      const link = await this.temporal.workflow.executeUpdateWithStart(consentLink, {
        startWorkflowOperation,
      });
      return { workflowId: options.workflowId, ...link };
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) {
        throw new DowngradeRefusedError(error.cause?.message ?? error.message);
      }
      throw error;
    }
  }

  /** The start of a user's downgrade: their Read/Write token stored (when given), under an id of their `sub`. */
  private async individualStartOptions(request: StartIndividualDowngrade) {
    const credentialRef = request.refreshToken
      ? await this.requireStore().saveCredentials({
          kind: 'account',
          sub: request.sub,
          accessToken: '',
          refreshToken: request.refreshToken,
          label: 'read/write authorization to revoke',
        })
      : undefined;
    const input: IndividualDowngradeInput = {
      sub: request.sub,
      userId: request.userId,
      email: request.email,
      credentialRef,
      providerHint: request.providerHint,
      deadlineMs: request.deadlineMs ?? this.defaults.deadlineMs,
      reminderIntervalMs: request.reminderIntervalMs ?? this.defaults.reminderIntervalMs,
      maxPrompts: request.maxPrompts ?? this.defaults.maxPrompts,
      consentRequestLifetimeMs: request.consentRequestLifetimeMs ?? this.defaults.consentRequestLifetimeMs,
      revokeWhenOpened: request.revokeWhenOpened || undefined,
    };
    return {
      workflowId: individualDowngradeId(request.sub),
      taskQueue: this.taskQueue,
      args: [input] as [IndividualDowngradeInput],
      workflowIdConflictPolicy: 'USE_EXISTING' as const,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'individual' },
        { key: searchAttributes.state, value: input.revokeWhenOpened ? 'awaiting_link_open' : 'revoking' },
        { key: searchAttributes.sub, value: request.sub },
      ]),
      staticSummary: `Downgrade ${request.sub}${request.userId ? ` (user ${request.userId})` : ''} to Free/Busy`,
      staticDetails: `Individual Connect. Up to ${input.maxPrompts} prompts, each waiting ${Math.round(input.deadlineMs / 60_000)} min.`,
    };
  }

  /**
   * Captures the domain's users and reads its service account without changing anything at Cronofy: what the
   * downgrade will do, under an id an operator approves. The users are kept as captured; a later change to the
   * list needs a new preview.
   */
  async previewEnterpriseDowngrade(request: PreviewEnterpriseDowngrade): Promise<EnterprisePreview> {
    const users = this.requireEnterpriseUsers();
    const serviceAccountRef = await this.saveServiceAccount(request);
    const capture = await users.capture(request.users);
    const previewId = `pv_${randomBytes(12).toString('base64url')}`;
    const inspected = serviceAccountRef
      ? await this.temporal.workflow.execute<typeof inspectServiceAccount>('inspectServiceAccount', {
          workflowId: `preview-${request.domain}-${previewId}`,
          taskQueue: this.taskQueue,
          args: [{ serviceAccountRef }],
          workflowExecutionTimeout: '5m',
          staticSummary: `Preview the downgrade of ${request.domain}: read its service account`,
        })
      : undefined;
    const preview = buildPreview({
      previewId,
      domain: request.domain,
      capture,
      serviceAccount: inspected && { ...inspected, sub: request.serviceAccountSub },
      running: await runningRunId(this.temporal, enterpriseDowngradeId(request.domain)),
      cronofyCallsPerSecond: this.cronofyCallsPerSecond,
      now: new Date(),
    });
    await users.savePreview({
      previewId,
      domain: request.domain,
      captureId: capture.captureId,
      serviceAccountRef,
      serviceAccountSub: request.serviceAccountSub,
      preview,
    });
    return preview;
  }

  async getEnterprisePreview(previewId: string): Promise<EnterprisePreview> {
    const record = await this.requireEnterpriseUsers().getPreview(previewId);
    if (!record) throw new PreviewNotFoundError(`no preview ${previewId}`);
    return record.preview as EnterprisePreview;
  }

  /**
   * Starts a domain's downgrade; starting the same domain again while it runs returns the running one. By default
   * it first previews (or takes `previewId`) and the run revokes nothing until an operator approves that preview
   * (`approveEnterpriseDowngrade`); with `requireApproval: false` it captures the users and revokes at once.
   */
  async startEnterpriseDowngrade(
    request: StartEnterpriseDowngrade,
  ): Promise<{ workflowId: string; runId: string; previewId?: string }> {
    const workflowId = enterpriseDowngradeId(request.domain);
    const running = await runningRunId(this.temporal, workflowId);
    if (running) return { workflowId, runId: running };
    const requireApproval = request.requireApproval ?? true;
    if (!request.previewId && !request.serviceAccountRefreshToken && !request.serviceAccountSub) {
      throw new Error('name the service account to revoke: serviceAccountRefreshToken or serviceAccountSub');
    }
    const previewId =
      request.previewId ??
      (requireApproval
        ? (await this.previewEnterpriseDowngrade({ ...request, users: request.users ?? [] })).previewId
        : undefined);
    const from = previewId
      ? await this.previewedRun(request.domain, previewId)
      : await this.capturedRun(request);
    const started = await this.startEnterpriseRun({
      domain: request.domain,
      ...from,
      adminEmail: request.adminEmail,
      deadlineMs: request.deadlineMs ?? this.defaults.deadlineMs,
      reminderIntervalMs: request.reminderIntervalMs ?? this.defaults.reminderIntervalMs,
      maxPrompts: request.maxPrompts ?? this.defaults.maxPrompts,
      userDeadlineMs: request.userDeadlineMs ?? this.enterpriseDefaults.userDeadlineMs,
      maxUserRequests: request.maxUserRequests ?? this.enterpriseDefaults.maxUserRequests,
      window: request.window ?? this.enterpriseDefaults.window,
      historyEventBudget: request.historyEventBudget,
      approval:
        previewId && requireApproval
          ? { previewId, deadlineMs: request.approvalDeadlineMs ?? DEFAULT_APPROVAL_DEADLINE_MS }
          : undefined,
      breaker: request.breaker === false ? undefined : (request.breaker ?? DEFAULT_BREAKER),
    });
    return { ...started, previewId };
  }

  /** The users and service account a preview bound. */
  private async previewedRun(domain: string, previewId: string) {
    const record = await this.requireEnterpriseUsers().getPreview(previewId);
    if (!record) throw new PreviewNotFoundError(`no preview ${previewId}`);
    if (record.domain !== domain) {
      throw new Error(`preview ${previewId} is of ${record.domain}, not ${domain}`);
    }
    const preview = record.preview as EnterprisePreview;
    return {
      captureId: record.captureId,
      userCount: preview.users.count,
      serviceAccountRef: record.serviceAccountRef,
      serviceAccountSub: record.serviceAccountSub,
    };
  }

  private async capturedRun(request: StartEnterpriseDowngrade) {
    const users = await this.enterpriseUsersInput(request.users ?? []);
    const serviceAccountRef = await this.saveServiceAccount(request);
    return { ...users, serviceAccountRef, serviceAccountSub: request.serviceAccountSub };
  }

  private async saveServiceAccount(request: {
    domain: string;
    serviceAccountRefreshToken?: string;
    serviceAccountSub?: string;
  }): Promise<string | undefined> {
    if (!request.serviceAccountRefreshToken) return undefined;
    return this.requireStore().saveCredentials({
      kind: 'service_account',
      sub: request.serviceAccountSub ?? 'unknown',
      accessToken: '',
      refreshToken: request.serviceAccountRefreshToken,
      label: `service account of ${request.domain} to revoke`,
    });
  }

  /**
   * With a shared credential store the client captures the users itself (any size, page by page); without one
   * they travel inline and the workflow captures them, which suits small domains only.
   */
  private async enterpriseUsersInput(
    pages: PreviewEnterpriseDowngrade['users'],
  ): Promise<{ captureId: string; userCount: number } | { inlineUsers: string[] }> {
    if (this.enterpriseUsers) {
      const { captureId, count } = await this.enterpriseUsers.capture(pages);
      return { captureId, userCount: count };
    }
    const inlineUsers: string[] = [];
    for await (const page of pages) {
      inlineUsers.push(...page);
      if (inlineUsers.length > MAX_INLINE_USERS) {
        throw new Error(
          `more than ${MAX_INLINE_USERS} users: give the DowngradeClient enterpriseUsers on the service's PostgreSQL`,
        );
      }
    }
    return { inlineUsers };
  }

  async getEnterpriseDowngrade(domain: string): Promise<EnterpriseStatus> {
    return this.handle(enterpriseDowngradeId(domain), (handle) => handle.query(getEnterpriseStatus));
  }

  /** Waits until the domain's downgrade ends; a cancelled one resolves with phase `cancelled`. */
  async waitForEnterpriseResult(domain: string): Promise<EnterpriseStatus> {
    return this.handle(enterpriseDowngradeId(domain), async (handle) => {
      try {
        return (await handle.result()) as EnterpriseStatus;
      } catch (error) {
        if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
          return handle.query(getEnterpriseStatus);
        }
        throw error;
      }
    });
  }

  /** Per-user outcomes, a page at a time (filter by state, e.g. `['failed', 'expired']`). */
  async getEnterpriseUserOutcomes(
    domain: string,
    options: { states?: string[]; offset?: number; limit?: number } = {},
  ): Promise<UserOutcome[]> {
    const { captureId } = await this.getEnterpriseDowngrade(domain);
    return this.requireEnterpriseUsers().outcomes(captureId, options);
  }

  /**
   * Asks again for the users of a finished domain downgrade that failed or expired, with the service account it
   * already verified: a new run over just those users.
   */
  async retryFailedEnterpriseUsers(
    domain: string,
    overrides: Partial<EnterpriseDefaults> = {},
  ): Promise<{ workflowId: string; runId: string; users: number }> {
    const finished = await this.getEnterpriseDowngrade(domain);
    if (!operatedRunHasEnded(finished.phase)) {
      throw new DowngradeRefusedError(
        `the downgrade of ${domain} is still ${finished.phase}; retry its failed users once it has completed`,
      );
    }
    if (finished.phase !== 'completed' || !finished.serviceAccountRef || !finished.providerName) {
      throw new DowngradeRefusedError(
        `the downgrade of ${domain} ended ${finished.phase}; only a completed one has users to retry`,
      );
    }
    const users = this.requireEnterpriseUsers();
    const failedPages = async function* () {
      for (let offset = 0; ; offset += 1000) {
        const page = await users.outcomes(finished.captureId, {
          states: ['failed', 'expired'],
          offset,
          limit: 1000,
        });
        if (page.length === 0) return;
        yield page.map((outcome) => outcome.email);
      }
    };
    const { captureId, count } = await users.capture(failedPages());
    const started = await this.startEnterpriseRun({
      domain,
      captureId,
      userCount: count,
      deadlineMs: this.defaults.deadlineMs,
      reminderIntervalMs: this.defaults.reminderIntervalMs,
      maxPrompts: this.defaults.maxPrompts,
      ...this.enterpriseDefaults,
      ...overrides,
      breaker: DEFAULT_BREAKER,
      progress: {
        serviceAccountRef: finished.serviceAccountRef,
        providerName: finished.providerName,
        nextPosition: 0,
        counts: {},
        runs: 0,
      },
    });
    return { ...started, users: count };
  }

  async cancelEnterpriseDowngrade(domain: string): Promise<void> {
    await this.handle(enterpriseDowngradeId(domain), (handle) => handle.cancel());
  }

  /** Lets a run waiting in `awaiting_approval` revoke; refused unless `previewId` is the one it was started from. */
  async approveEnterpriseDowngrade(
    domain: string,
    decision: OperatorDecision & { previewId: string },
  ): Promise<EnterpriseStatus> {
    return sendOperatorUpdate(this.temporal, this.operated(domain), approveDowngrade, decision);
  }

  /** Ends a run waiting in `awaiting_approval` as `rejected`, with nothing done at Cronofy. */
  async rejectEnterpriseDowngrade(domain: string, decision: OperatorDecision): Promise<EnterpriseStatus> {
    return sendOperatorUpdate(this.temporal, this.operated(domain), rejectDowngrade, decision);
  }

  /** Answers once the domain makes no Cronofy call of its own and starts no user; waiting users keep waiting. */
  async pauseEnterpriseDowngrade(domain: string, decision: OperatorDecision): Promise<EnterpriseStatus> {
    return sendOperatorUpdate(this.temporal, this.operated(domain), pauseDowngrade, decision);
  }

  async resumeEnterpriseDowngrade(domain: string, decision: OperatorDecision): Promise<EnterpriseStatus> {
    return sendOperatorUpdate(this.temporal, this.operated(domain), resumeDowngrade, decision);
  }

  /** Every captured user of the domain's latest run with their outcome so far, a page at a time, in capture order. */
  async getEnterpriseReport(
    domain: string,
    page: { offset?: number; limit?: number } = {},
  ): Promise<{ domain: string; captureId: string; phase: string; users: number; rows: ReportRow[] }> {
    const status = await this.getEnterpriseDowngrade(domain);
    const rows = await this.requireEnterpriseUsers().report(
      status.captureId,
      page.offset ?? 0,
      page.limit ?? 1000,
    );
    return { domain, captureId: status.captureId, phase: status.phase, users: status.userCount, rows };
  }

  private operated(domain: string) {
    return {
      workflowId: enterpriseDowngradeId(domain),
      subject: `the downgrade of ${domain}`,
      status: getEnterpriseStatus,
    };
  }

  private async startEnterpriseRun(
    input: EnterpriseDowngradeInput,
  ): Promise<{ workflowId: string; runId: string }> {
    const workflowId = enterpriseDowngradeId(input.domain);
    const handle = await this.temporal.workflow.start<typeof enterpriseDowngrade>('enterpriseDowngrade', {
      workflowId,
      taskQueue: this.taskQueue,
      args: [{ ...input, temporalUiUrl: input.temporalUiUrl ?? this.temporalUiUrl }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'enterprise' },
        {
          key: searchAttributes.state,
          value: input.progress ? 'moving_users' : input.approval ? 'awaiting_approval' : 'revoking',
        },
        { key: searchAttributes.domain, value: input.domain },
      ]),
      staticSummary: `Downgrade domain ${input.domain} (${input.userCount ?? input.inlineUsers?.length} users) to Free/Busy`,
      staticDetails: `Enterprise Connect. ${input.progress ? 'Retrying users with the verified service account.' : 'Revoke, administrator re-authorization, then every user.'} Window ${input.window}.`,
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  }

  async getDowngrade(workflowId: string): Promise<DowngradeStatus> {
    return this.handle(workflowId, async (handle) => handle.query(getStatus));
  }

  /** Waits until the downgrade ends; a cancelled one resolves with state `cancelled`. */
  async waitForResult(workflowId: string): Promise<DowngradeResult> {
    return this.handle(workflowId, async (handle) => {
      try {
        return (await handle.result()) as DowngradeResult;
      } catch (error) {
        if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
          return (await handle.query(getStatus)) as DowngradeResult;
        }
        throw error;
      }
    });
  }

  async cancelDowngrade(workflowId: string): Promise<void> {
    await this.handle(workflowId, (handle) => handle.cancel());
  }

  /** The new Free/Busy credentials of a completed downgrade: how the application receives its tokens. */
  async getNewCredentials(workflowId: string): Promise<StoredCredentials> {
    const result = await this.waitForResult(workflowId);
    if (result.state !== 'completed' || !result.credentialRef) {
      throw new Error(`downgrade ${workflowId} ended in state ${result.state}; it has no new credentials`);
    }
    return this.requireStore().getCredentials(result.credentialRef);
  }

  private requireEnterpriseUsers(): EnterpriseUsers {
    if (!this.enterpriseUsers) throw new Error('this DowngradeClient was created without enterpriseUsers');
    return this.enterpriseUsers;
  }

  private requireStore(): CredentialStore {
    if (!this.store) throw new Error('this DowngradeClient was created without a credential store');
    return this.store;
  }

  private async handle<T>(
    workflowId: string,
    use: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<T>,
  ): Promise<T> {
    try {
      return await use(this.temporal.workflow.getHandle(workflowId));
    } catch (error) {
      if (error instanceof Error && error.name === 'WorkflowNotFoundError') {
        throw new DowngradeNotFoundError(`no downgrade with id ${workflowId}`);
      }
      throw error;
    }
  }
}
