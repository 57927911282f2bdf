import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
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
}
