import { Context, getClient } from '@temporalio/activity';
import { workflowLink } from '../contracts/temporalUiLinks.js';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { cancelUnfinished, wholeBatch } from './capturedUsers.js';
import { CronofyUnauthorizedError } from '../cronofy/errors.js';
import { serviceAccountProfile, type ServiceAccountProfile } from '../cronofy/schemas.js';
import type { IssuingRun, PromptRequest } from '../contracts/stateToken.js';
import type { StoredCredentials } from '../store/credentialStore.js';
import { callCronofy } from './callCronofy.js';
import { exchangeCodeOnce } from './exchangeCode.js';
import type { ActivityDeps, ExchangedGrant } from './deps.js';
import { FREE_BUSY_SCOPE, searchAttributes } from '../workflows/definitions.js';
import {
  enterpriseUserDowngradeId,
  type EnterpriseUserInput,
  type UserOutcomeState,
} from '../workflows/enterpriseDefinitions.js';

/** The service account may manage accounts, and grant each user no more than Free/Busy. */
export const SERVICE_ACCOUNT_SCOPE = ['service_account/accounts/manage'] as const;
export const DELEGATED_SCOPE = [FREE_BUSY_SCOPE] as const;

/** A user to ask access for: who, the run its state is bound to, and which of its requests this is. */
type AccessRequestUser = IssuingRun & { email: string; request: number };

/** A batch the domain started: where it sits in the capture, and the run id of each of its users' workflows. */
export interface StartedBatch {
  parentWorkflowId: string;
  captureId: string;
  from: number;
  runIds: string[];
}

/** Refresh a service-account token this long before Cronofy's 30-minute expiry. */
const DEFAULT_REFRESH_MARGIN_MS = 2 * 60_000;

export function createEnterpriseActivities(deps: ActivityDeps) {
  const { cronofy, store, stateSigner, enterpriseUsers } = deps;

  /** One refresh at a time per service account in this worker; concurrent callers share it. */
  const refreshing = new Map<string, Promise<StoredCredentials>>();
  const refreshServiceAccount = (ref: string): Promise<StoredCredentials> => {
    let pending = refreshing.get(ref);
    if (!pending) {
      pending = (async () => {
        const current = await store.getCredentials(ref);
        if (!current.refreshToken) throw new Error(`service account ${ref} has no refresh token`);
        const token = await cronofy.refreshAccessToken(current.refreshToken);
        await store.updateAccessToken(ref, token.access_token, token.expires_in, token.refresh_token);
        return store.getCredentials(ref);
      })().finally(() => refreshing.delete(ref));
      refreshing.set(ref, pending);
    }
    return pending;
  };

  /** The one place service-account tokens are refreshed: before they expire, and once on a 401. */
  const withServiceAccountToken = async <T>(
    ref: string,
    call: (accessToken: string) => Promise<T>,
  ): Promise<T> =>
    callCronofy(async () => {
      let credentials = await store.getCredentials(ref);
      const expiresAt = credentials.accessTokenExpiresAt?.getTime() ?? 0;
      if (expiresAt - Date.now() < (deps.serviceAccountRefreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS))
        credentials = await refreshServiceAccount(ref);
      try {
        return await call(credentials.accessToken);
      } catch (error) {
        if (!(error instanceof CronofyUnauthorizedError)) throw error;
        return call((await refreshServiceAccount(ref)).accessToken);
      }
    });

  /** One Cronofy call for up to 50 users; each gets a signed state bound to its own user workflow. */
  const requestAccess = async (
    serviceAccountRef: string,
    users: AccessRequestUser[],
    expiresAt: number,
  ): Promise<void> => {
    const entries = await Promise.all(
      users.map(async (user) => {
        const { state } = await stateSigner.issue(
          { ...user, prompt: user.request, expiresAt },
          'enterprise_user',
        );
        const callbackUrl = new URL(deps.serviceAccountCallbackUrl);
        callbackUrl.searchParams.set('state', state);
        return {
          email: user.email,
          callbackUrl: callbackUrl.toString(),
          scope: DELEGATED_SCOPE.join(' '),
          state,
        };
      }),
    );
    await withServiceAccountToken(serviceAccountRef, (token) =>
      cronofy.requestServiceAccountAuthorizations(token, entries),
    );
  };

  /**
   * The users of a batch of the capture (positions `from` … `from + size - 1`): each one's e-mail, position and
   * workflow id, which the capture and the position fix. Read when the batch starts and again when its access is
   * requested, so that the domain's history carries only run ids.
   */
  const batchUsers = async (batch: {
    parentWorkflowId: string;
    captureId: string;
    from: number;
    size: number;
  }) => {
    const { parentWorkflowId, captureId, from } = batch;
    const emails = wholeBatch(await enterpriseUsers.page(captureId, from, batch.size), batch);
    return emails.map((email, index) => ({
      email,
      position: from + index,
      workflowId: enterpriseUserDowngradeId(parentWorkflowId, captureId, from + index),
    }));
  };

  /** Who the users of a started batch are, each asked for the first time. */
  const startedUsers = async (batch: StartedBatch): Promise<AccessRequestUser[]> => {
    const users = await batchUsers({ ...batch, size: batch.runIds.length });
    return users.map(({ email, workflowId }, index) => {
      // A user's workflow never continues as new: its first run is its only one.
      const runId = batch.runIds[index]!;
      return { email, workflowId, runId, firstRunId: runId, request: 1 };
    });
  };

  return {
    async createEnterpriseAuthorizationRequest(
      request: PromptRequest,
    ): Promise<{ authorizationUrl: string; nonce: string }> {
      const { state, nonce } = await stateSigner.issue(request, 'enterprise_admin');
      const authorizationUrl = cronofy.enterpriseAuthorizationUrl({
        redirectUri: deps.redirectUri,
        scope: SERVICE_ACCOUNT_SCOPE,
        delegatedScope: DELEGATED_SCOPE,
        state,
      });
      return { authorizationUrl, nonce };
    },

    /** Exchanges the administrator's code for a new service account and reads its provider from userinfo. */
    async exchangeServiceAccountCode(request: {
      codeRef: string;
      workflowId: string;
    }): Promise<ExchangedGrant & { domain?: string; delegatedScope?: string }> {
      const credentials = await exchangeCodeOnce(deps, {
        codeRef: request.codeRef,
        redirectUri: deps.redirectUri,
        kind: 'service_account',
        label: request.workflowId,
      });
      const info = await withServiceAccountToken(credentials.ref, (token) => cronofy.userInfo(token));
      const profile = serviceAccountProfile(info);
      return {
        credentialRef: credentials.ref,
        sub: credentials.sub,
        providerName: profile.providerName ?? 'unknown',
        domain: profile.domain,
        delegatedScope: profile.delegatedScope,
      };
    },

    /** What the current service account is, for a preview: its userinfo, read without changing anything. */
    async inspectServiceAccount(request: { serviceAccountRef: string }): Promise<ServiceAccountProfile> {
      const info = await withServiceAccountToken(request.serviceAccountRef, (token) =>
        cronofy.userInfo(token),
      );
      return serviceAccountProfile(info);
    },

    /** Captures a domain's users given inline, before anything is revoked. */
    async captureUsers(request: { emails: string[] }): Promise<{ captureId: string; userCount: number }> {
      const { captureId, count } = await enterpriseUsers.capture([request.emails]);
      return { captureId, userCount: count };
    },

    async loadUserPage(request: { captureId: string; offset: number; limit: number }): Promise<string[]> {
      return enterpriseUsers.page(request.captureId, request.offset, request.limit);
    },

    /**
     * Starts the workflows of a batch of users (positions `from` … `from + size - 1` of the capture), through the
     * worker's own Temporal client: one activity instead of a child start each in the domain's history. Each
     * user's workflow id is fixed by the capture and position and may be used once, so a retried activity finds the
     * workflows it started and never starts a user twice. Returns the run id of each, in position order: all the
     * batch's access request needs besides what the capture holds, so the domain's history stays small.
     */
    async startUsers(request: {
      domain: string;
      captureId: string;
      from: number;
      size: number;
      taskQueue: string;
      user: Pick<
        EnterpriseUserInput,
        'parentWorkflowId' | 'serviceAccountRef' | 'userDeadlineMs' | 'maxUserRequests'
      >;
    }): Promise<string[]> {
      const users = await batchUsers({ ...request, parentWorkflowId: request.user.parentWorkflowId });
      const client = getClient();
      // What the UI would show of a parent: each user's run names its domain's, and links to it.
      const parent = request.user.parentWorkflowId;
      const namespace = Context.current().info.workflowNamespace ?? 'default';
      const domainDetails = `Enterprise Connect user of the domain's downgrade ${
        deps.temporalUiUrl ? `[${parent}](${workflowLink(deps.temporalUiUrl, namespace, parent)})` : parent
      }.`;
      return Promise.all(
        users.map(async ({ email, position, workflowId }) => {
          const input: EnterpriseUserInput = {
            ...request.user,
            domain: request.domain,
            captureId: request.captureId,
            email,
            position,
          };
          let runId: string;
          try {
            const handle = await client.workflow.start('enterpriseUserDowngrade', {
              workflowId,
              taskQueue: request.taskQueue,
              args: [input],
              workflowIdReusePolicy: 'REJECT_DUPLICATE',
              staticSummary: `User ${position + 1} of domain ${request.domain}`,
              staticDetails: domainDetails,
              typedSearchAttributes: new TypedSearchAttributes([
                { key: searchAttributes.kind, value: 'enterprise_user' },
                { key: searchAttributes.domain, value: request.domain },
                { key: searchAttributes.state, value: 'awaiting_user_access' },
              ]),
            });
            runId = handle.firstExecutionRunId;
          } catch (error) {
            if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
            runId = (await client.workflow.getHandle(workflowId).describe()).runId;
          }
          return runId;
        }),
      );
    },

    /** How many of a capture's users have an outcome, by state: the domain's progress. */
    async countUserOutcomes(request: {
      captureId: string;
    }): Promise<Partial<Record<UserOutcomeState, number>>> {
      return enterpriseUsers.countsByState(request.captureId);
    },

    /** Cancels the workflows of the users started (positions before `before`) that have no outcome yet. */
    cancelUsers: cancelUnfinished(
      enterpriseUsers,
      (request: { parentWorkflowId: string; captureId: string; before: number }, position) =>
        enterpriseUserDowngradeId(request.parentWorkflowId, request.captureId, position),
    ),

    /**
     * One Cronofy call for up to 50 users: given, when a user asks again, or named by the batch of the capture the
     * domain started (their e-mails come from the capture and their workflow ids from their positions, so only
     * the run ids pass through the domain's history).
     */
    async requestUserAccess(
      request: { serviceAccountRef: string; expiresAt: number } & (
        { users: AccessRequestUser[] } | { batch: StartedBatch }
      ),
    ): Promise<void> {
      const users = 'users' in request ? request.users : await startedUsers(request.batch);
      await requestAccess(request.serviceAccountRef, users, request.expiresAt);
    },

    /** A user's code is exchanged with `redirect_uri` = exactly the callback URL it was posted to. */
    async exchangeUserAccessCode(request: {
      codeRef: string;
      redirectUri: string;
      label: string;
    }): Promise<ExchangedGrant> {
      const credentials = await exchangeCodeOnce(deps, { ...request, kind: 'account' });
      return {
        credentialRef: credentials.ref,
        sub: credentials.sub,
        providerName: credentials.providerName ?? 'unknown',
        providerService: credentials.providerService,
      };
    },

    async recordUserOutcome(request: {
      captureId: string;
      email: string;
      state: string;
      reason?: string;
      credentialRef?: string;
    }): Promise<void> {
      await enterpriseUsers.recordOutcome(request.captureId, request);
    },
  };
}
