import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { bearerTokenOf, sendInvalidToken } from './bearer.js';
import { authenticateClient, sendOAuthError } from './oauth.js';
import type { SimulatorState } from './state.js';

const revokeSchema = z.object({ token: z.string().optional(), sub: z.string().optional() });

/**
 * Revoke Authorization, of an account or a service account: `POST /oauth/token/revoke`. As in RFC 7009 the answer
 * is 200 with an empty body whether the token was live, already revoked or unknown, which makes a retry always safe.
 */
export function registerRevokeRoute(app: FastifyInstance, state: SimulatorState): void {
  app.post('/oauth/token/revoke', { config: { endpoint: 'revoke' } }, async (request, reply) => {
    const client = authenticateClient(state, request.body);
    if (!client) return sendOAuthError(reply, 'invalid_client');

    const target = revokeSchema.safeParse(request.body);
    if (!target.success) return sendOAuthError(reply, 'invalid_request');
    const { token, sub } = target.data;

    // Tokens and subs are unique across accounts and service accounts: at most one of each pair matches.
    if (token) {
      state.revokeByToken(client.clientId, token);
      state.enterprise.revokeByToken(client.clientId, token);
    } else if (sub) {
      state.revokeBySub(client.clientId, sub);
      state.enterprise.revokeBySub(client.clientId, sub);
    } else return sendOAuthError(reply, 'invalid_request');
    return reply.code(200).send();
  });

  /**
   * Revoke Profile: `POST /v1/profiles/{profile_id}/revoke` with the account's bearer token, 202 with an empty
   * body. Only that calendar profile is let go; the authorization and its tokens live on.
   */
  app.post<{ Params: { profileId: string } }>(
    '/v1/profiles/:profileId/revoke',
    { config: { endpoint: 'revoke_profile' } },
    async (request, reply) => {
      const token = bearerTokenOf(request);
      const authorization = token === undefined ? undefined : state.authorizeAccessToken(token);
      if (!authorization) return sendInvalidToken(reply, token);
      if (state.accountOf(authorization).profileId !== request.params.profileId)
        return reply.code(404).send();
      authorization.profileRevoked = true;
      return reply.code(202).send();
    },
  );
}
