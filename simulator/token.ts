import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { authenticateClient, sendOAuthError } from './oauth.js';
import { serviceAccountTokenResponse } from './serviceAccountResponses.js';
import type { IssuedTokens, SimulatorState } from './state.js';

const grantTypeSchema = z.object({ grant_type: z.string().min(1) });

const grantSchema = z.discriminatedUnion('grant_type', [
  z.object({
    grant_type: z.literal('authorization_code'),
    code: z.string().min(1),
    redirect_uri: z.string().min(1),
  }),
  z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1) }),
]);

const supportedGrantTypes: readonly string[] = ['authorization_code', 'refresh_token'];

function refreshResponse(tokens: IssuedTokens, scope: string) {
  return {
    token_type: 'bearer',
    access_token: tokens.accessToken,
    expires_in: tokens.expiresIn,
    refresh_token: tokens.refreshToken,
    scope,
  };
}

/** Request an Access Token and Refresh an Access Token: `POST /oauth/token`. */
export function registerTokenRoute(app: FastifyInstance, state: SimulatorState): void {
  app.post('/oauth/token', { config: { endpoint: 'token' } }, async (request, reply) => {
    const client = authenticateClient(state, request.body);
    if (!client) return sendOAuthError(reply, 'invalid_client');

    const grantType = grantTypeSchema.safeParse(request.body);
    if (!grantType.success) return sendOAuthError(reply, 'invalid_request');
    if (!supportedGrantTypes.includes(grantType.data.grant_type)) {
      return sendOAuthError(reply, 'unsupported_grant_type');
    }
    const grant = grantSchema.safeParse(request.body);
    if (!grant.success) return sendOAuthError(reply, 'invalid_request');

    reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');

    if (grant.data.grant_type === 'authorization_code') {
      const { code, redirect_uri: redirectUri } = grant.data;
      const serviceAccount = state.enterprise.redeemCode(code, client.clientId, redirectUri);
      if (serviceAccount) {
        return serviceAccountTokenResponse(serviceAccount, state.enterprise.issueTokens(serviceAccount));
      }
      const authorization = state.redeemCode(code, client.clientId, redirectUri);
      if (!authorization) return sendOAuthError(reply, 'invalid_grant');
      const account = state.accountOf(authorization);
      const tokens = state.issueTokens(authorization);
      return {
        token_type: 'bearer',
        access_token: tokens.accessToken,
        expires_in: tokens.expiresIn,
        refresh_token: tokens.refreshToken,
        scope: authorization.scope,
        account_id: account.sub,
        sub: account.sub,
        linking_profile: {
          provider_name: authorization.providerName,
          provider_service: authorization.providerService,
          profile_id: account.profileId,
          profile_name: account.email,
        },
      };
    }

    const { refresh_token: refreshToken } = grant.data;
    const serviceAccount = state.enterprise.findRefreshableServiceAccount(client.clientId, refreshToken);
    if (serviceAccount)
      return refreshResponse(state.enterprise.issueTokens(serviceAccount), serviceAccount.scope);
    const authorization = state.findRefreshableAuthorization(client.clientId, refreshToken);
    if (!authorization) return sendOAuthError(reply, 'invalid_grant');
    return refreshResponse(state.issueTokens(authorization), authorization.scope);
  });
}
