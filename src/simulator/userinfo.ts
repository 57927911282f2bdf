import type { FastifyInstance } from 'fastify';
import { bearerTokenOf } from './bearer.js';
import type { SimulatorState } from './state.js';

/** UserInfo for an account token: `GET /v1/userinfo`. */
export function registerUserinfoRoute(app: FastifyInstance, state: SimulatorState): void {
  app.get('/v1/userinfo', { config: { endpoint: 'userinfo' } }, async (request, reply) => {
    const token = bearerTokenOf(request);
    const authorization = token === undefined ? undefined : state.authorizeAccessToken(token);
    if (!authorization) {
      const challenge =
        token === undefined ? 'Bearer realm="Cronofy"' : 'Bearer realm="Cronofy", error="invalid_token"';
      return reply.code(401).header('WWW-Authenticate', challenge).send();
    }
    const account = state.accountOf(authorization);
    return {
      sub: account.sub,
      email: account.email,
      'cronofy.type': 'account',
      'cronofy.data': {
        authorization: { scope: authorization.scope, status: 'active' },
        profiles: [
          {
            provider_name: authorization.providerName,
            provider_service: authorization.providerService,
            profile_id: account.profileId,
            profile_name: account.email,
            profile_connected: true,
            profile_calendars: [],
          },
        ],
      },
    };
  });
}
