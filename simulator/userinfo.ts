import type { FastifyInstance } from 'fastify';
import { bearerTokenOf, sendInvalidToken } from './bearer.js';
import { serviceAccountUserinfo } from './serviceAccountResponses.js';
import type { SimulatorState } from './state.js';

/** UserInfo for an account or a service account token: `GET /v1/userinfo`. */
export function registerUserinfoRoute(app: FastifyInstance, state: SimulatorState): void {
  app.get('/v1/userinfo', { config: { endpoint: 'userinfo' } }, async (request, reply) => {
    const token = bearerTokenOf(request);
    const serviceAccount = token === undefined ? undefined : state.enterprise.authorizeAccessToken(token);
    if (serviceAccount) return serviceAccountUserinfo(serviceAccount);
    const authorization = token === undefined ? undefined : state.authorizeAccessToken(token);
    if (!authorization) return sendInvalidToken(reply, token);
    const account = state.accountOf(authorization);
    return {
      sub: account.sub,
      email: account.email,
      'cronofy.type': 'account',
      'cronofy.data': {
        authorization: { scope: authorization.scope, status: 'active' },
        profiles: authorization.profileRevoked
          ? []
          : [
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
