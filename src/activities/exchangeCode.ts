import type { CronofyClient } from '../cronofy/client.js';
import type { CredentialMetadata, CredentialStore } from '../store/credentialStore.js';
import { callCronofy } from './callCronofy.js';

/**
 * Exchanges a stored authorization code at most once. Codes are single use, so an activity retried after a crash
 * that followed a successful exchange must not exchange again: it finds the credentials the first attempt saved
 * under the code's reference.
 */
export async function exchangeCodeOnce(
  deps: { cronofy: CronofyClient; store: CredentialStore },
  request: { codeRef: string; redirectUri: string; kind: 'account' | 'service_account'; label: string },
): Promise<CredentialMetadata> {
  const { cronofy, store } = deps;
  const existing = await store.findByGrantKey(request.codeRef);
  if (existing) return store.describeCredentials(existing);

  const code = await store.readSecret(request.codeRef);
  const token = await callCronofy(() => cronofy.requestAccessToken(code, request.redirectUri));
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
