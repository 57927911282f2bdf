import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { registerAuthorizePage } from './authorizePage.js';
import { bearerTokenOf } from './bearer.js';
import { registerControlRoutes } from './control.js';
import { registerEnterpriseAuthorizePage } from './enterpriseAuthorizePage.js';
import { registerEnterpriseControlRoutes } from './enterpriseControl.js';
import { keepStateInFile } from './persistence.js';
import { registerFaultHook } from './faults.js';
import { claimedClientId, sendOAuthError } from './oauth.js';
import { cronofyRateLimit, rateLimitSchema, registerRateLimitHook, type RateLimit } from './rateLimit.js';
import { registerRequestLogHook } from './requestLog.js';
import { registerRevokeRoute } from './revoke.js';
import { registerServiceAccountAuthorizationsRoute } from './serviceAccountAuthorizations.js';
import { ServiceAccountCallbacks } from './serviceAccountCallbacks.js';
import { SimulatorState, type SimulatorClient } from './state.js';
import { registerTokenRoute } from './token.js';
import { registerUserinfoRoute } from './userinfo.js';

export type { SimulatorClient } from './state.js';

export interface SimulatorOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  clients: SimulatorClient[];
  /** Default 3600. */
  accessTokenTtlSeconds?: number;
  /** Enterprise Connect service account tokens; default 1800, as Cronofy's. */
  serviceAccountTokenTtlSeconds?: number;
  /** Per client_id; default Cronofy's 50 per second and 500 per minute. */
  rateLimit?: RateLimit;
  /** Fastify's logger; default off. Query strings and headers are never logged. */
  logger?: boolean;
  /** Keep the state in this JSON file across restarts (see persistence.ts); default in memory only. */
  stateFile?: string;
}

export interface RunningSimulator {
  /** e.g. `http://127.0.0.1:12345`, no trailing slash. Serves both Cronofy's app host and API host paths. */
  url: string;
  close(): Promise<void>;
}

const optionsSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(0),
  clients: z.array(
    z.object({
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      redirectUris: z.array(z.url()),
    }),
  ),
  accessTokenTtlSeconds: z.number().int().positive().default(3600),
  serviceAccountTokenTtlSeconds: z.number().int().positive().default(1800),
  rateLimit: rateLimitSchema.default(cronofyRateLimit),
  logger: z.boolean().default(false),
  stateFile: z.string().min(1).optional(),
});

const secretFreeLogger = {
  serializers: {
    req: (request: FastifyRequest) => ({ method: request.method, path: request.url.split('?')[0] }),
  },
};

/** The rate limit counts against the client an API request identifies: by its client_id, or by its bearer token. */
function clientIdOf(state: SimulatorState, request: FastifyRequest): string | undefined {
  const claimed = claimedClientId(request.body);
  if (claimed !== undefined) return state.findClient(claimed)?.clientId;
  const token = bearerTokenOf(request);
  return token === undefined ? undefined : state.clientIdOfAccessToken(token);
}

/** Builds the simulator without listening, for callers that want `app.inject` or their own `listen`. */
export async function buildSimulator(
  options: SimulatorOptions,
): Promise<{ app: FastifyInstance; state: SimulatorState }> {
  const config = optionsSchema.parse(options);
  const state = new SimulatorState(
    config.clients,
    config.accessTokenTtlSeconds,
    config.rateLimit,
    config.serviceAccountTokenTtlSeconds,
  );
  const app = Fastify({ logger: config.logger ? secretFreeLogger : false });
  await app.register(formbody);

  registerFaultHook(app, state.faults);
  registerRateLimitHook(app, state.rateLimiter, (request) => clientIdOf(state, request));
  registerRequestLogHook(app, state.requestLog, () => state.now());
  app.addHook('onResponse', async () => state.markChanged());
  app.setErrorHandler((error: { statusCode?: number }, request, reply) => {
    // An unreadable body on a token endpoint is an OAuth invalid_request, not a framework error page.
    const endpoint = request.routeOptions.config.endpoint;
    const clientError = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500;
    if ((endpoint === 'token' || endpoint === 'revoke') && clientError)
      return sendOAuthError(reply, 'invalid_request');
    if (endpoint === 'service_account_authorizations' && clientError) {
      const unreadable = { key: 'errors.invalid', description: 'the body must be a JSON object' };
      return reply.code(422).send({ errors: { request: [unreadable] } });
    }
    return reply.send(error);
  });

  registerAuthorizePage(app, state);
  registerTokenRoute(app, state);
  registerRevokeRoute(app, state);
  registerUserinfoRoute(app, state);
  registerControlRoutes(app, state);

  registerEnterpriseAuthorizePage(app, state);
  registerServiceAccountAuthorizationsRoute(app, state, new ServiceAccountCallbacks(state));
  registerEnterpriseControlRoutes(app, state);
  app.addHook('onClose', async () => state.enterprise.abortDeliveries());
  if (config.stateFile) {
    const kept = keepStateInFile(state, config.stateFile);
    app.addHook('onClose', async () => kept.close());
  }
  return { app, state };
}

export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const { app } = await buildSimulator(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string')
    throw new Error('the simulator is not listening on TCP');
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${urlHost}:${address.port}`, close: () => app.close() };
}
