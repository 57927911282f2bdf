import type { ServiceAccount } from './enterpriseState.js';
import type { IssuedTokens } from './state.js';

/** Request an Access Token with an administrator's code: no linking_profile, the provider is in the userinfo. */
export function serviceAccountTokenResponse(serviceAccount: ServiceAccount, tokens: IssuedTokens) {
  return {
    token_type: 'bearer',
    access_token: tokens.accessToken,
    expires_in: tokens.expiresIn,
    refresh_token: tokens.refreshToken,
    scope: serviceAccount.scope,
    sub: serviceAccount.id,
    service_account_id: serviceAccount.id,
  };
}

/** UserInfo for a service account token. */
export function serviceAccountUserinfo(serviceAccount: ServiceAccount) {
  return {
    sub: serviceAccount.id,
    'cronofy.type': 'service_account',
    'cronofy.data': {
      service_account: { provider_name: serviceAccount.providerName, domain: serviceAccount.domain },
      authorization: {
        scope: serviceAccount.scope,
        status: 'active',
        delegated_scope: serviceAccount.delegatedScope,
      },
    },
  };
}
