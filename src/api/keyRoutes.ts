import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { API_SCOPES } from '../store/apiKeys.js';
import type { ApiDeps } from './deps.js';
import { answerOnce, IDEMPOTENT_HEADERS } from './idempotent.js';
import { Problem, PROBLEM, REFUSALS, POST_REFUSALS } from './problems.js';

const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    scopes: z.array(z.enum(API_SCOPES)),
    createdAt: z.iso.datetime(),
    revokedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'ApiKey' });

const CreateApiKey = z
  .strictObject({
    name: z.string().min(1).max(200).describe('Who or what uses it, e.g. the billing backend'),
    scopes: z.array(z.enum(API_SCOPES)).min(1).describe('At most the scopes of the key that creates it'),
  })
  .meta({ id: 'CreateApiKey' });

const KeyId = z.object({ id: z.string().regex(/^[0-9a-f]{16}$/) });

/** The API's keys, for a key with keys:admin: a new key (its text answered once), the list, a revocation. */
export const keyRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { keys, idempotency } = deps;

  app.post(
    '/v1/api-keys',
    {
      config: { scope: 'keys:admin' },
      schema: {
        operationId: 'createApiKey',
        summary: 'A new API key: its text is in this answer and stored nowhere but as a hash',
        tags: ['keys'],
        headers: IDEMPOTENT_HEADERS,
        body: CreateApiKey,
        response: {
          201: ApiKey.extend({ key: z.string().describe('The key itself: keep it now') }),
          ...POST_REFUSALS,
        },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { name, scopes } = request.body;
        const beyond = scopes.filter((scope) => !request.apiKey!.scopes.includes(scope));
        if (beyond.length > 0) {
          throw new Problem(
            'insufficient_scope',
            `this key cannot give scopes it lacks: ${beyond.join(', ')}`,
          );
        }
        return { status: 201, body: await keys.create(name, [...new Set(scopes)]) };
      }),
  );

  app.get(
    '/v1/api-keys',
    {
      config: { scope: 'keys:admin' },
      schema: {
        operationId: 'listApiKeys',
        summary: 'Every key: its id, name, scopes, and whether it is revoked; never its text',
        tags: ['keys'],
        response: { 200: z.object({ keys: z.array(ApiKey) }), ...REFUSALS },
      },
    },
    async () => ({ keys: await keys.list() }),
  );

  app.post(
    '/v1/api-keys/:id/revoke',
    {
      config: { scope: 'keys:admin' },
      schema: {
        operationId: 'revokeApiKey',
        summary: 'Revoke a key at once',
        tags: ['keys'],
        headers: IDEMPOTENT_HEADERS,
        params: KeyId,
        response: {
          200: z.object({ revoked: z.string() }),
          ...POST_REFUSALS,
          404: PROBLEM,
        },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { id } = request.params;
        if (!(await keys.revoke(id))) throw new Problem('not_found', `no API key ${id}`);
        return { status: 200, body: { revoked: id } };
      }),
  );
};
