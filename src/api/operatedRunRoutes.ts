import { negotiate } from '@fastify/accept-negotiator';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from './deps.js';
import { answerOnce, IDEMPOTENT_HEADERS } from './idempotent.js';
import {
  Approval,
  CreatePreview,
  CreateUpload,
  Decision,
  PreviewPath,
  Report,
  ReportQuery,
  RunPath,
  RunPreview,
  type RunKind,
  RunStatus,
  StartedRun,
  StartRun,
  Upload,
  UploadPage,
  UploadPath,
} from './operatedRunSchemas.js';
import { asProblem, Problem, PROBLEM, REFUSALS, POST_REFUSALS } from './problems.js';
import { runKinds } from './runKinds.js';

const NOT_FOUND = { 404: PROBLEM };
const REFUSED = { 404: PROBLEM, 409: PROBLEM };
const CSV = 'text/csv';

/**
 * The runs that move many people, a domain's downgrade (`/v1/domains/…`) and a campaign (`/v1/campaigns/…`), by one
 * set of routes: their people uploaded page by page into a preview, a start from that preview, the operators'
 * decisions, status and report.
 */
export const operatedRunRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { idempotency, uploads } = deps;
  const kinds = runKinds(deps.domains, deps.campaigns);
  const service = (kind: RunKind) => kinds[kind];

  app.post(
    '/v1/uploads',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'createUpload',
        summary: "Begin uploading a preview's people",
        description:
          'A domain of any size travels in pages: create an upload, add its pages in order, then make a preview ' +
          'of it. An upload belongs to the key that created it and is read once.',
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        body: CreateUpload,
        response: { 201: Upload, ...POST_REFUSALS },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => ({
        status: 201,
        body: await uploads.create(request.apiKey!.id, request.body.kind),
      })),
  );

  app.post(
    '/v1/uploads/:uploadId/pages',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'addUploadPage',
        summary: 'Add the next page of people to an upload',
        description: `Up to 5,000 people a page: a domain's users as \`emails\`, a campaign's as \`people\`.`,
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        params: UploadPath,
        body: UploadPage,
        response: { 200: Upload, ...POST_REFUSALS, ...NOT_FOUND },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { uploadId } = request.params;
        const keyId = request.apiKey!.id;
        const upload = await uploads.get(keyId, uploadId);
        if (!upload) throw new Problem('upload_not_found', `no upload ${uploadId} of this key`);
        const field = service(upload.kind).pageField;
        const people = (request.body as Record<string, unknown[] | undefined>)[field];
        if (!people) {
          throw new Problem(
            'invalid_request',
            `upload ${uploadId} is of ${upload.kind}: send its people as \`${field}\``,
          );
        }
        return { status: 200, body: await uploads.addPage(keyId, uploadId, people) };
      }),
  );

  app.post(
    '/v1/:kind/:name/previews',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'createPreview',
        summary: 'Preview a run: what it will do, changing nothing at Cronofy',
        description:
          "Captures the upload's people in order (duplicates and malformed entries dropped and counted) and, for " +
          "a domain, reads its service account. The preview's id is what starting and approving name.",
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        params: RunPath,
        body: CreatePreview,
        response: { 201: RunPreview, ...POST_REFUSALS, ...NOT_FOUND },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { kind, name } = request.params;
        const { uploadId, ...serviceAccount } = request.body;
        const upload = await uploads.get(request.apiKey!.id, uploadId);
        if (!upload || upload.kind !== kind) {
          throw new Problem('upload_not_found', `no upload ${uploadId} of ${kind} of this key`);
        }
        const preview = await asProblem(() =>
          service(kind).preview(name, uploads.pages(uploadId), serviceAccount),
        );
        await uploads.delete(uploadId);
        return { status: 201, body: preview };
      }),
  );

  app.get(
    '/v1/:kind/:name/previews/:previewId',
    {
      config: { scope: 'operators:read' },
      schema: {
        operationId: 'getPreview',
        summary: 'A preview, as it was made',
        tags: ['runs'],
        params: PreviewPath,
        response: { 200: RunPreview, ...REFUSALS, ...NOT_FOUND },
      },
    },
    ({ params: { kind, name, previewId } }) => asProblem(() => service(kind).getPreview(name, previewId)),
  );

  app.post(
    '/v1/:kind/:name/start',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'startRun',
        summary: 'Start a run from its preview',
        description:
          'By default the run waits in `awaiting_approval` until an operator approves the preview. Starting a ' +
          'run that is already running answers with that run.',
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        params: RunPath,
        body: StartRun,
        response: { 201: StartedRun, ...POST_REFUSALS, ...NOT_FOUND },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { kind, name } = request.params;
        return { status: 201, body: await asProblem(() => service(kind).start(name, request.body)) };
      }),
  );

  app.get(
    '/v1/:kind/:name',
    {
      config: { scope: 'operators:read' },
      schema: {
        operationId: 'getRun',
        summary: "A run's status: its phase, its people's counts, its approval and pause",
        tags: ['runs'],
        params: RunPath,
        response: { 200: RunStatus, ...REFUSALS, ...NOT_FOUND },
      },
    },
    ({ params: { kind, name } }) => asProblem(() => service(kind).get(name)),
  );

  const decisions = [
    ['approve', 'operators:approve', Approval, 'Approve the preview a run waits on: it goes ahead'],
    [
      'reject',
      'operators:approve',
      Decision,
      'Reject a run waiting for approval: it ends `rejected`, nothing done',
    ],
    [
      'pause',
      'operators:write',
      Decision,
      'Pause a run: answers once it starts no one and calls Cronofy no more',
    ],
    ['resume', 'operators:write', Decision, 'Resume a run paused by an operator or by its circuit breaker'],
  ] as const;
  for (const [decision, scope, body, summary] of decisions) {
    app.post(
      `/v1/:kind/:name/${decision}`,
      {
        config: { scope },
        schema: {
          operationId: `${decision}Run`,
          summary,
          description:
            'Answers with the status once the decision has taken effect; 409 when the phase refuses it.',
          tags: ['runs'],
          headers: IDEMPOTENT_HEADERS,
          params: RunPath,
          body,
          response: { 200: RunStatus, ...POST_REFUSALS, ...REFUSED },
        },
      },
      (request, reply) =>
        answerOnce(idempotency, request, reply, async () => {
          const { kind, name } = request.params;
          const run = service(kind);
          const status = await asProblem(() =>
            decision === 'approve'
              ? run.approve(name, request.body as z.infer<typeof Approval>)
              : run[decision](name, request.body),
          );
          return { status: 200, body: status };
        }),
    );
  }

  app.post(
    '/v1/:kind/:name/cancel',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'cancelRun',
        summary: "Cancel a run and its people's downgrades still under way",
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        params: RunPath,
        response: { 202: RunPath, ...POST_REFUSALS, ...REFUSED },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { kind, name } = request.params;
        await asProblem(() => service(kind).cancel(name));
        return { status: 202, body: { kind, name } };
      }),
  );

  app.post(
    '/v1/:kind/:name/retry-failed',
    {
      config: { scope: 'operators:write' },
      schema: {
        operationId: 'retryFailed',
        summary: 'Ask again the people of a completed run whose downgrade failed or expired',
        description:
          'A new run over just those people, with the service account the domain already verified.',
        tags: ['runs'],
        headers: IDEMPOTENT_HEADERS,
        params: RunPath,
        response: { 201: StartedRun, ...POST_REFUSALS, ...REFUSED },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        const { kind, name } = request.params;
        return { status: 201, body: await asProblem(() => service(kind).retryFailed(name)) };
      }),
  );

  app.get(
    '/v1/:kind/:name/report',
    {
      config: { scope: 'operators:read' },
      schema: {
        operationId: 'getReport',
        summary: 'Every person of the run with their outcome so far, in order, a page at a time',
        description:
          'JSON by default; CSV with `Accept: text/csv` (the header on the first page, so that pages concatenate). ' +
          'The next page is named by `nextCursor` and by a `Link: <…>; rel="next"` header.',
        tags: ['runs'],
        params: RunPath,
        querystring: ReportQuery,
        response: {
          200: {
            content: {
              'application/json': { schema: Report },
              [CSV]: { schema: z.string() },
            },
          },
          ...REFUSALS,
          ...NOT_FOUND,
        },
      },
    },
    async (request, reply) => {
      const { kind, name } = request.params;
      const { limit, cursor } = request.query;
      const offset = cursor ? Number(cursor) : 0;
      const run = service(kind);
      const page = await asProblem(() => run.report(name, offset, limit));
      const nextCursor =
        offset + page.rows.length < page.users ? String(offset + page.rows.length) : undefined;
      if (nextCursor) {
        const next = new URLSearchParams({ limit: String(limit), cursor: nextCursor });
        reply.header('link', `<${request.url.split('?')[0]}?${next}>; rel="next"`);
      }
      if (negotiate(request.headers.accept ?? '*/*', ['application/json', CSV]) === CSV) {
        return reply
          .type(`${CSV}; charset=utf-8`)
          .serializer((text) => text as string)
          .send(run.csv(page.rows, offset === 0));
      }
      return reply.type('application/json').send({ kind, name, ...page, nextCursor });
    },
  );
};
