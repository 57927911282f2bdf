import { CronofyUnauthorizedError } from '../cronofy/errors.js';
import { serviceAccountProfile } from '../cronofy/schemas.js';
import { issuingRun, StateSigner, type IssuingRun } from '../callbacks/stateToken.js';
import type { StoredCredentials } from '../store/credentialStore.js';
import { callCronofy } from './callCronofy.js';
import { exchangeCodeOnce } from './exchangeCode.js';
import type { ActivityDeps, ExchangedGrant } from './index.js';

/** The service account may manage accounts, and grant each user no more than Free/Busy. */
export const SERVICE_ACCOUNT_SCOPE = ['service_account/accounts/manage'] as const;
export const DELEGATED_SCOPE = ['free_busy_write'] as const;

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

  return {
    async createEnterpriseAuthorizationRequest(
      request: IssuingRun & {
        prompt: number;
        expiresAt: number;
      },
    ): Promise<{ authorizationUrl: string; nonce: string }> {
      const nonce = StateSigner.newNonce();
      const state = await stateSigner.sign(
        {
          ...issuingRun(request),
          purpose: 'enterprise_admin',
          prompt: request.prompt,
          nonce,
        },
        new Date(request.expiresAt),
      );
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
    }): Promise<ExchangedGrant & { domain?: string }> {
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
      };
    },

    /** Captures a domain's users given inline, before anything is revoked. */
    async captureUsers(request: { emails: string[] }): Promise<{ captureId: string; userCount: number }> {
      const { captureId, count } = await enterpriseUsers.capture([request.emails]);
      return { captureId, userCount: count };
    },

    async loadUserPage(request: { captureId: string; offset: number; limit: number }): Promise<string[]> {
      return enterpriseUsers.page(request.captureId, request.offset, request.limit);
    },

    /** One Cronofy call for up to 50 users; each gets a signed state bound to its own child workflow. */
    async requestUserAccess(request: {
      serviceAccountRef: string;
      users: Array<IssuingRun & { email: string; request: number }>;
      expiresAt: number;
    }): Promise<void> {
      const entries = await Promise.all(
        request.users.map(async (user) => {
          const state = await stateSigner.sign(
            {
              ...issuingRun(user),
              purpose: 'enterprise_user',
              prompt: user.request,
              nonce: StateSigner.newNonce(),
            },
            new Date(request.expiresAt),
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
      await withServiceAccountToken(request.serviceAccountRef, (token) =>
        cronofy.requestServiceAccountAuthorizations(token, entries),
      );
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
