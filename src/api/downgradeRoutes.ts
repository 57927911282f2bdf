import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from './deps.js';
import { answerOnce, IDEMPOTENT_HEADERS } from './idempotent.js';
import { asProblem, Problem, PROBLEM, REFUSALS, POST_REFUSALS } from './problems.js';
import {
  DowngradeId,
  DowngradeList,
  ListDowngrades,
  DowngradeStatus,
  NewCredentials,
  StartDowngrade,
  StartedDowngrade,
} from './downgradeSchemas.js';

/** Individual downgrades: start one with its link, follow it, cancel it, take its new credentials. */
export const downgradeRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { individual, idempotency } = deps;

  app.post(
    '/v1/downgrades',
    {
      config: { scope: 'downgrades:write' },
      schema: {
        operationId: 'startDowngrade',
        summary: "Start a person's downgrade and answer with their consent link",
        description:
          'Revokes the Read/Write authorization (at once, or once the person opens the link) and asks the person ' +
          "to authorize again choosing Free/Busy. A person's downgrade that is already running is answered with its " +
          'current link.',
        tags: ['downgrades'],
        headers: IDEMPOTENT_HEADERS,
        body: StartDowngrade,
        response: { 201: StartedDowngrade, ...POST_REFUSALS },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const started = await asProblem(() => individual.startWithLink(request.body));
        return { status: 201, body: StartedDowngrade.parse(started) };
      }),
  );

  app.get(
    '/v1/downgrades',
    {
      config: { scope: 'downgrades:read' },
      schema: {
        operationId: 'listDowngrades',
        summary: "People's downgrades, newest first",
        tags: ['downgrades'],
        querystring: ListDowngrades,
        response: { 200: DowngradeList, ...REFUSALS },
      },
    },
    async (request) => {
      const { state, limit, cursor } = request.query;
      try {
        return DowngradeList.parse(await individual.list({ state, pageSize: limit, cursor }));
      } catch (error) {
        // Temporal refuses a page token it never gave as INVALID_ARGUMENT, or (the dev server) UNKNOWN.
        if (cursor && [2, 3].includes((error as { code?: number }).code ?? 0)) {
          throw new Problem('invalid_request', 'the cursor is not one this API gave');
        }
        throw error;
      }
    },
  );

  app.get(
    '/v1/downgrades/:workflowId',
    {
      config: { scope: 'downgrades:read' },
      schema: {
        operationId: 'getDowngrade',
        summary: "A downgrade's status",
        tags: ['downgrades'],
        params: DowngradeId,
        response: { 200: DowngradeStatus, ...REFUSALS, 404: PROBLEM },
      },
    },
    async (request) =>
      DowngradeStatus.parse(await asProblem(() => individual.get(request.params.workflowId))),
  );

  app.post(
    '/v1/downgrades/:workflowId/cancel',
    {
      config: { scope: 'downgrades:write' },
      schema: {
        operationId: 'cancelDowngrade',
        summary: 'Cancel a running downgrade',
        description: 'Answers once the cancellation is requested; the downgrade then ends `cancelled`.',
        tags: ['downgrades'],
        headers: IDEMPOTENT_HEADERS,
        params: DowngradeId,
        response: { 202: DowngradeId, ...POST_REFUSALS, 404: PROBLEM },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { workflowId } = request.params;
        await asProblem(() => individual.cancel(workflowId));
        return { status: 202, body: { workflowId } };
      }),
  );

  app.get(
    '/v1/downgrades/:workflowId/credentials',
    {
      config: { scope: 'credentials:read' },
      schema: {
        operationId: 'getNewCredentials',
        summary: 'The new Free/Busy credentials of a completed downgrade',
        tags: ['downgrades'],
        params: DowngradeId,
        response: { 200: NewCredentials, ...REFUSALS, 404: PROBLEM, 409: PROBLEM },
      },
    },
    async (request) => {
      const { workflowId } = request.params;
      const credentials = await asProblem(() => individual.completedCredentials(workflowId));
      return NewCredentials.parse({
        ...credentials,
        accessTokenExpiresAt: credentials.accessTokenExpiresAt?.toISOString(),
      });
    },
  );
};
