import {
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { CredentialStore, StoredCredentials } from '../store/credentialStore.js';
import {
  consentLink,
  getStatus,
  individualDowngradeId,
  isIndividualDowngradeId,
  searchAttributes,
  stateAtStart,
  type DowngradeResult,
  type DowngradeState,
  type DowngradeStatus,
  type FreeBusyProvider,
  type IndividualDowngradeInput,
} from '../workflows/definitions.js';
import type { individualDowngrade } from '../workflows/individualDowngrade.js';
import { listIndividualDowngrades, type DowngradePage } from './downgradeList.js';
import { DowngradeNotFoundError, DowngradeRefusedError } from './errors.js';
import { resultOrStatus, withWorkflow } from './workflowCalls.js';

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

export interface StartIndividualDowngradeWithToken extends StartIndividualDowngrade {
  /** The current Read/Write refresh token; stored encrypted and revoked. Without it the downgrade revokes by sub. */
  refreshToken?: string;
}

export interface IndividualRunsOptions {
  temporal: Client;
  taskQueue: string;
  defaults: DowngradeDefaults;
}

export interface IndividualClientOptions extends IndividualRunsOptions {
  /**
   * Where tokens are handed over (a refresh token to revoke, the new credentials): the service's database. The
   * embedded file database admits one process at a time: a client in another process than the service needs
   * PostgreSQL.
   */
  store: CredentialStore;
}

/** The link a started downgrade answers with. */
export interface StartedWithLink {
  workflowId: string;
  authorizationUrl: string;
  authorizationExpiresAt: string;
  /** The service's link to the current consent request, which outlives any one request: hand the person this. */
  link?: string;
}

/**
 * Individual Connect downgrades through Temporal alone: a downgrade revoked by the person's `sub`, followed and
 * cancelled by its workflow id. IndividualClient adds the token handover, which needs the service's database.
 */
export class IndividualRuns {
  constructor(protected readonly options: IndividualRunsOptions) {}

  /** Starting the same user's downgrade again while it runs returns the running one. */
  async start(request: StartIndividualDowngrade): Promise<{ workflowId: string; runId: string }> {
    return this.startRun(request, undefined);
  }

  /**
   * Starts the downgrade (or finds the running one of the same user) and answers with the person's link in the same
   * call, so that a backend's request handler can send the person there at once: an update sent with the start
   * (update-with-start), which completes once the workflow has made the link. A downgrade that ended before it had
   * one is refused (DowngradeRefusedError, with the reason).
   */
  async startWithLink(request: StartIndividualDowngrade): Promise<StartedWithLink> {
    return this.startRunWithLink(request, undefined);
  }

  get(workflowId: string): Promise<DowngradeStatus> {
    return this.withDowngrade(workflowId, (handle) => handle.query(getStatus));
  }

  /** Waits until the downgrade ends; a cancelled one resolves with state `cancelled`. */
  waitForResult(workflowId: string): Promise<DowngradeResult> {
    // A cancelled run's status has state `cancelled`, one of the terminal states.
    return this.withDowngrade(workflowId, (handle) =>
      resultOrStatus(handle, getStatus),
    ) as Promise<DowngradeResult>;
  }

  async cancel(workflowId: string): Promise<void> {
    await this.withDowngrade(workflowId, (handle) => handle.cancel());
  }

  /**
   * As withWorkflow, for an Individual downgrade only: a domain's run, a campaign's or any other workflow is no
   * downgrade of this client's. A person's own downgrade is known by its id; a campaign's person's by its type.
   */
  private withDowngrade<T>(workflowId: string, use: (handle: WorkflowHandle) => Promise<T>): Promise<T> {
    return withWorkflow(this.options.temporal, workflowId, async (handle) => {
      if (!isIndividualDowngradeId(workflowId) && (await handle.describe()).type !== 'individualDowngrade') {
        throw new DowngradeNotFoundError(`no Individual downgrade with id ${workflowId}`);
      }
      return use(handle);
    });
  }

  /** A page of the downgrades, newest first, optionally in one state (downgradeList.ts). */
  list(options: { state?: DowngradeState; pageSize: number; cursor?: string }): Promise<DowngradePage> {
    return listIndividualDowngrades(this.options.temporal, options);
  }

  protected async startRun(request: StartIndividualDowngrade, credentialRef: string | undefined) {
    const options = this.startOptions(request, credentialRef);
    const handle = await this.options.temporal.workflow.start<typeof individualDowngrade>(
      'individualDowngrade',
      options,
    );
    return { workflowId: options.workflowId, runId: handle.firstExecutionRunId };
  }

  protected async startRunWithLink(
    request: StartIndividualDowngrade,
    credentialRef: string | undefined,
  ): Promise<StartedWithLink> {
    const options = this.startOptions(request, credentialRef);
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof individualDowngrade>(
      'individualDowngrade',
      options,
    );
    try {
      const link = await this.options.temporal.workflow.executeUpdateWithStart(consentLink, {
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

  /** The start of a user's downgrade, under an id of their `sub`. */
  private startOptions(request: StartIndividualDowngrade, credentialRef: string | undefined) {
    const { defaults } = this.options;
    const input: IndividualDowngradeInput = {
      sub: request.sub,
      userId: request.userId,
      email: request.email,
      credentialRef,
      providerHint: request.providerHint,
      deadlineMs: request.deadlineMs ?? defaults.deadlineMs,
      reminderIntervalMs: request.reminderIntervalMs ?? defaults.reminderIntervalMs,
      maxPrompts: request.maxPrompts ?? defaults.maxPrompts,
      consentRequestLifetimeMs: request.consentRequestLifetimeMs ?? defaults.consentRequestLifetimeMs,
      revokeWhenOpened: request.revokeWhenOpened || undefined,
    };
    input.stateAtStart = stateAtStart(input);
    return {
      workflowId: individualDowngradeId(request.sub),
      taskQueue: this.options.taskQueue,
      args: [input] as [IndividualDowngradeInput],
      workflowIdConflictPolicy: 'USE_EXISTING' as const,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'individual' },
        { key: searchAttributes.state, value: input.stateAtStart },
        { key: searchAttributes.sub, value: request.sub },
      ]),
      staticSummary: `Downgrade ${request.sub}${request.userId ? ` (user ${request.userId})` : ''} to Free/Busy`,
      staticDetails: `Individual Connect. Up to ${input.maxPrompts} prompts, each waiting ${Math.round(input.deadlineMs / 60_000)} min.`,
    };
  }
}

/** The typed API backend services use to start, follow and cancel Individual downgrades, with their tokens. */
export class IndividualClient extends IndividualRuns {
  private readonly store: CredentialStore;

  constructor(options: IndividualClientOptions) {
    super(options);
    this.store = options.store;
  }

  /** Starting the same user's downgrade again while it runs returns the running one. */
  override async start(request: StartIndividualDowngradeWithToken) {
    return this.startRun(request, await this.saveToken(request));
  }

  /** As IndividualRuns.startWithLink, with the person's refresh token handed over first. */
  override async startWithLink(request: StartIndividualDowngradeWithToken): Promise<StartedWithLink> {
    return this.startRunWithLink(request, await this.saveToken(request));
  }

  /** The new Free/Busy credentials of a completed downgrade: how the application receives its tokens. */
  async getNewCredentials(workflowId: string): Promise<StoredCredentials> {
    const result = await this.waitForResult(workflowId);
    if (result.state !== 'completed' || !result.credentialRef) {
      throw new DowngradeRefusedError(
        `downgrade ${workflowId} ended in state ${result.state}; it has no new credentials`,
      );
    }
    return this.store.getCredentials(result.credentialRef);
  }

  /** As getNewCredentials, without waiting: a downgrade that has not completed is refused at once. */
  async completedCredentials(workflowId: string): Promise<StoredCredentials> {
    const status = await this.get(workflowId);
    if (status.state !== 'completed' || !status.credentialRef) {
      throw new DowngradeRefusedError(`downgrade ${workflowId} is ${status.state}: no new credentials`);
    }
    return this.store.getCredentials(status.credentialRef);
  }

  private async saveToken(request: StartIndividualDowngradeWithToken): Promise<string | undefined> {
    if (!request.refreshToken) return undefined;
    return this.store.saveCredentials({
      kind: 'account',
      sub: request.sub,
      accessToken: '',
      refreshToken: request.refreshToken,
      label: 'read/write authorization to revoke',
    });
  }
}
