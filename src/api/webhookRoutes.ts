import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CHANNELS } from '../store/notifications.js';
import type { ApiDeps } from './deps.js';
import { answerOnce, IDEMPOTENT_HEADERS } from './idempotent.js';
import { Problem, POST_REFUSALS, REFUSALS } from './problems.js';

const Event = z.object({
  eventId: z.string().describe('The Standard Webhooks `webhook-id`, stable across attempts'),
  channel: z.enum(CHANNELS),
  stream: z.string().describe('The downgrade (workflow id) the event is about'),
  eventType: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.int(),
  lastError: z.string().optional(),
  createdAt: z.iso.datetime(),
  nextAttemptAt: z.iso.datetime().optional(),
  deliveredAt: z.iso.datetime().optional(),
});

const EventList = z
  .object({
    events: z.array(Event),
    nextCursor: z.string().optional().describe('Absent on the last page'),
  })
  .meta({ id: 'WebhookEventList' });

const ListEvents = z.object({
  status: z.enum(['pending', 'delivered', 'failed']).optional().describe('Default: those not yet delivered'),
  downgrade: z.string().min(1).max(300).optional().describe("One downgrade's events (its workflow id)"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z
    .string()
    .regex(/^[1-9][0-9]{0,14}$/)
    .optional()
    .describe("The previous page's `nextCursor`"),
});

const Endpoint = z
  .object({
    state: z.enum(['enabled', 'disabled', 'not_configured']),
    disabledSince: z.iso.datetime().optional(),
    reason: z.string().optional().describe('Why it was disabled: the answer that disabled it'),
    pending: z.int().describe('Events waiting for delivery (webhook and email)'),
    failed: z.int().describe('Events that failed every attempt and wait for a redelivery'),
  })
  .meta({ id: 'WebhookEndpoint' });

const Redeliver = z.strictObject({
  downgrade: z.string().min(1).max(300).optional().describe("Only this downgrade's failed events"),
  channel: z.enum(CHANNELS).optional(),
});

/**
 * The outbox of events for the application's webhook and people's email, for operators: what waits or failed, a
 * redelivery of what failed, and the endpoint enabled again after it answered 410.
 */
export const webhookRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { notifications, idempotency, webhookUrl } = deps;

  app.get(
    '/v1/webhooks/events',
    {
      config: { scope: 'webhooks:admin' },
      schema: {
        operationId: 'listWebhookEvents',
        summary:
          'Events not yet delivered, or those of a status or of one downgrade, oldest first, a page at a time',
        tags: ['webhooks'],
        querystring: ListEvents,
        response: { 200: EventList, ...REFUSALS },
      },
    },
    async ({ query: { status, downgrade, limit, cursor } }) => {
      const { events, next } = await notifications.page({
        status: status ?? (downgrade ? undefined : 'pending'),
        stream: downgrade,
        limit,
        after: cursor ? Number(cursor) : undefined,
      });
      return { events, nextCursor: next === undefined ? undefined : String(next) };
    },
  );

  app.get(
    '/v1/webhooks/endpoint',
    {
      config: { scope: 'webhooks:admin' },
      schema: {
        operationId: 'getWebhookEndpoint',
        summary: 'Whether the webhook endpoint is enabled, and how many events wait',
        tags: ['webhooks'],
        response: { 200: Endpoint, ...REFUSALS },
      },
    },
    async () => {
      const disabled = webhookUrl ? await notifications.endpointDisabled(webhookUrl) : undefined;
      return {
        state: !webhookUrl ? 'not_configured' : disabled ? 'disabled' : 'enabled',
        disabledSince: disabled?.since,
        reason: disabled?.reason,
        ...(await notifications.undeliveredCounts()),
      } as const;
    },
  );

  app.post(
    '/v1/webhooks/redeliver',
    {
      config: { scope: 'webhooks:admin' },
      schema: {
        operationId: 'redeliverWebhookEvents',
        summary: 'Start a new schedule for failed events; each downgrade receives its events in order',
        tags: ['webhooks'],
        headers: IDEMPOTENT_HEADERS,
        body: Redeliver,
        response: { 200: z.object({ redelivered: z.int() }), ...POST_REFUSALS },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => ({
        status: 200,
        body: {
          redelivered: await notifications.redeliver({
            stream: request.body.downgrade,
            channel: request.body.channel,
          }),
        },
      })),
  );

  app.post(
    '/v1/webhooks/endpoint/enable',
    {
      config: { scope: 'webhooks:admin' },
      schema: {
        operationId: 'enableWebhookEndpoint',
        summary: 'Deliver to the webhook endpoint again after it answered 410; held events follow in order',
        tags: ['webhooks'],
        headers: IDEMPOTENT_HEADERS,
        response: {
          200: z.object({ enabled: z.boolean().describe('Whether it had been disabled') }),
          ...POST_REFUSALS,
        },
      },
    },
    (request, reply) =>
      answerOnce(idempotency, request, reply, async () => {
        if (!webhookUrl) throw new Problem('webhook_not_configured');
        return { status: 200, body: { enabled: await notifications.enableEndpoint(webhookUrl) } };
      }),
  );
};
