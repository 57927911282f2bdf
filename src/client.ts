import { type Client, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure, TypedSearchAttributes } from '@temporalio/common';
import type { CredentialStore, StoredCredentials } from './store/credentialStore.js';
import {
  getStatus,
  individualDowngradeId,
  searchAttributes,
  type DowngradeResult,
  type DowngradeStatus,
  type FreeBusyProvider,
  type IndividualDowngradeInput,
} from './workflows/definitions.js';
import type { individualDowngrade } from './workflows/individualDowngrade.js';

export interface DowngradeDefaults {
  deadlineMs: number;
  reminderIntervalMs: number;
  maxPrompts: number;
}

export interface StartIndividualDowngrade {
  /** The Cronofy account (`acc_…`). */
  sub: string;
  userId?: string;
  /** The current Read/Write refresh token; stored encrypted and revoked. Without it the downgrade revokes by sub. */
  refreshToken?: string;
  providerHint?: FreeBusyProvider;
  deadlineMs?: number;
  reminderIntervalMs?: number;
  maxPrompts?: number;
}

export interface DowngradeClientOptions {
  temporal: Client;
  taskQueue: string;
  defaults: DowngradeDefaults;
  /**
   * Needed to hand over tokens (a refresh token to revoke, the new credentials). The embedded file database
   * admits one process at a time: a client in another process than the service needs PostgreSQL.
   */
  store?: CredentialStore;
}

export class DowngradeNotFoundError extends Error {
  override readonly name = 'DowngradeNotFoundError';
}

/** The typed API backend services use to start, follow and cancel downgrades. */
export class DowngradeClient {
  private readonly temporal: Client;
  private readonly taskQueue: string;
  private readonly defaults: DowngradeDefaults;
  private readonly store?: CredentialStore;

  constructor(options: DowngradeClientOptions) {
    ({
      temporal: this.temporal,
      taskQueue: this.taskQueue,
      defaults: this.defaults,
      store: this.store,
    } = options);
  }

  /** Starting the same user's downgrade again while it runs returns the running one. */
  async startIndividualDowngrade(
    request: StartIndividualDowngrade,
  ): Promise<{ workflowId: string; runId: string }> {
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
      credentialRef,
      providerHint: request.providerHint,
      deadlineMs: request.deadlineMs ?? this.defaults.deadlineMs,
      reminderIntervalMs: request.reminderIntervalMs ?? this.defaults.reminderIntervalMs,
      maxPrompts: request.maxPrompts ?? this.defaults.maxPrompts,
    };
    const workflowId = individualDowngradeId(request.sub);
    const handle = await this.temporal.workflow.start<typeof individualDowngrade>('individualDowngrade', {
      workflowId,
      taskQueue: this.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'individual' },
        { key: searchAttributes.state, value: 'revoking' },
        { key: searchAttributes.sub, value: request.sub },
      ]),
      staticSummary: `Downgrade ${request.sub}${request.userId ? ` (user ${request.userId})` : ''} to Free/Busy`,
      staticDetails: `Individual Connect. Up to ${input.maxPrompts} prompts, each waiting ${Math.round(input.deadlineMs / 60_000)} min.`,
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
