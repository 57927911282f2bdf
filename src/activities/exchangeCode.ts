import { ApplicationFailure, Context } from '@temporalio/activity';
import type { CronofyClient } from '../cronofy/client.js';
import { CronofyGrantError } from '../cronofy/errors.js';
import type { CredentialMetadata, CredentialStore } from '../store/credentialStore.js';
import { callCronofy } from './callCronofy.js';

/** The code was used up by an attempt that never recorded its tokens: the human must be asked again. */
export const AUTHORIZATION_CODE_LOST = 'AuthorizationCodeLost';

/**
 * Exchanges a stored authorization code at most once. Codes are single use, so an activity retried after a crash
 * that followed a successful exchange must not exchange again: it finds the credentials the first attempt saved
 * under the code's reference. A crash between Cronofy's answer and that record loses the tokens, and the retry's
 * exchange is refused (`invalid_grant`): that is AuthorizationCodeLost, on which the workflow asks again.
 */
export async function exchangeCodeOnce(
  deps: { cronofy: CronofyClient; store: CredentialStore },
  request: { codeRef: string; redirectUri: string; kind: 'account' | 'service_account'; label: string },
): Promise<CredentialMetadata> {
  const { cronofy, store } = deps;
  const existing = await store.findByGrantKey(request.codeRef);
  if (existing) return store.describeCredentials(existing);

  const code = await store.readSecret(request.codeRef);
  const token = await callCronofy(async () => {
    try {
      return await cronofy.requestAccessToken(code, request.redirectUri);
    } catch (error) {
      if (error instanceof CronofyGrantError && Context.current().info.attempt > 1) {
        throw ApplicationFailure.nonRetryable(
          'the authorization code was used by an earlier attempt that did not record its result',
          AUTHORIZATION_CODE_LOST,
        );
      }
      throw error;
    }
  });
  const profile = token.linking_profile;
  const ref = await store.saveCredentials({
    kind: request.kind,
    sub: token.service_account_id ?? token.sub ?? token.account_id ?? 'unknown',
    accessToken: token.access_token,
    refreshToken: token.refresh_token,
    expiresInSeconds: token.expires_in,
    scope: token.scope,
    providerName: profile?.provider_name,
    providerService: profile?.provider_service,
    profileId: profile?.profile_id,
    profileName: profile?.profile_name,
    label: request.label,
    grantKey: request.codeRef,
  });
  await store.deleteSecret(request.codeRef);
  return store.describeCredentials(ref);
}
