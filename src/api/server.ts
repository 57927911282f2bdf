import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { loggerOptions } from '../logger.js';
import type { ApiDeps } from './deps.js';
import { downgradeRoutes } from './downgradeRoutes.js';
import { keyRoutes } from './keyRoutes.js';
import { operatedRunRoutes } from './operatedRunRoutes.js';
import { webhookRoutes } from './webhookRoutes.js';
import { Problem, PROBLEM_CONTENT_TYPE } from './problems.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  logLevel?: string;
  /** Each key's requests a minute, in a bucket shared by every API process on the database; none: no limit. */
  requestsPerMinute?: number;
  /** Where log lines go instead of standard output (a test reads them). */
  logStream?: { write(line: string): void };
}

/** The service's public HTTP API, `/v1`, listening: see `buildApiServer`. */
export async function startApiServer(
  deps: ApiDeps,
  options: ApiServerOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApiServer(deps, options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const url = `http://${options.host}:${typeof address === 'object' && address ? address.port : options.port}`;
  return { app, url };
}

/**
 * The API's OpenAPI document, made from the routes' zod schemas with no service behind them: what the TypeScript
 * client's types are generated from.
 */
export async function apiDocument(): Promise<Record<string, unknown>> {
  const app = await buildApiServer({} as ApiDeps, { logLevel: 'silent' });
  await app.ready();
  const document = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return document;
}

/** The API's routes, its OpenAPI document made from their zod schemas, its keys: not yet listening. */
export async function buildApiServer(
  deps: ApiDeps,
  options: Omit<ApiServerOptions, 'host' | 'port'>,
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { ...loggerOptions(options.logLevel ?? 'info'), stream: options.logStream },
    bodyLimit: 1024 * 1024,
    // A path parameter may be as long as its schema allows, percent-encoded: the schema answers, not the router.
    routerOptions: { maxParamLength: 4096 },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Cronofy downgrade service',
        version: '1.0.0',
        description:
          'Downgrades Cronofy calendar connections from Read/Write to Free/Busy. Every request carries an API key ' +
          '(`Authorization: Bearer cdk_…`) with the scope its operation names. Errors are `application/problem+json` ' +
          'with a stable `code`. A POST with an `Idempotency-Key` header is answered once: the same key and request ' +
          'get the first answer again, the same key with another request a 422.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/v1/docs' });

  app.addHook('onRequest', async (request) => {
    const scope = request.routeOptions.config.scope;
    if (!scope) return;
    const presented = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const key = presented ? await deps.keys.authenticate(presented) : undefined;
    if (!key)
      throw new Problem(
        'unauthenticated',
        'send an API key of this service as `Authorization: Bearer cdk_…`',
      );
    if (!key.scopes.includes(scope)) {
      throw new Problem('insufficient_scope', `this needs an API key with the scope ${scope}`);
    }
    if (options.requestsPerMinute) {
      const budget = await deps.keys.takeRequest(key.id, options.requestsPerMinute);
      if (!budget.allowed) {
        throw new Problem('rate_limited', undefined, { retryAfterSeconds: budget.retryAfterSeconds });
      }
    }
    request.apiKey = key;
  });
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof Problem) return sendProblem(reply, error);
    if (hasZodFastifySchemaValidationErrors(error)) {
      const errors = error.validation.map((issue) => ({
        path: `${error.validationContext ?? 'body'}${issue.instancePath.replace(/\//g, '.')}`,
        message: issue.message ?? 'is not valid',
      }));
      return sendProblem(
        reply,
        new Problem('invalid_request', 'the request does not match its schema', { errors }),
      );
    }
    const status = (error as { statusCode?: number }).statusCode;
    // fastify's own refusals (a body that is not JSON, one too large, an unsupported media type) are the caller's.
    if (status !== undefined && status >= 400 && status < 500) {
      return sendProblem(reply, new Problem('invalid_request', (error as Error).message));
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, new Problem('internal'));
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new Problem('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  await app.register(downgradeRoutes, { deps });
  await app.register(operatedRunRoutes, { deps });
  await app.register(webhookRoutes, { deps });
  await app.register(keyRoutes, { deps });
  app.get('/v1/openapi.json', { schema: { hide: true } }, () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, () => ({ ok: true }));

  return app;
}

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  if (problem.code === 'unauthenticated') reply.header('www-authenticate', 'Bearer');
  if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds));
  return reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .serializer((body) => JSON.stringify(body))
    .send(problem.toDocument());
}
