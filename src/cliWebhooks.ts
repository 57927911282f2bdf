/**
 * `cronofy-downgrade webhooks …`: the outbox of events (store/notifications.ts), for operators, through the API's
 * webhook routes (src/api/webhookRoutes.ts; a key with `webhooks:admin`).
 */
import { Option, type Command } from 'commander';
import type { ApiClient } from './cliApi.js';
import { CHANNELS, type Channel, type NotificationSummary } from './store/notifications.js';

export interface WebhooksIo {
  /** The service's API, opened for the command that needs it. */
  api(): ApiClient;
  json(): boolean;
  out(text: string): void;
}

/** The events `webhooks list` asks the API for at a time (its largest page). */
const PAGE_SIZE = 1000;

/** `GET /v1/webhooks/endpoint`. */
interface Endpoint {
  state: 'enabled' | 'disabled' | 'not_configured';
  disabledSince?: string;
  reason?: string;
  pending: number;
  failed: number;
}

/** Adds the `webhooks` commands to `program`, whose output and exit settings they inherit. */
export function addWebhooksCommands(program: Command, io: WebhooksIo): void {
  const print = (value: unknown, text: string) =>
    io.out(`${io.json() ? JSON.stringify(value, null, 2) : text}\n`);
  const channel = new Option('--channel <channel>', 'webhook or email').choices(CHANNELS);

  const webhooks = program
    .command('webhooks')
    .description("the events for the application's webhook and people's email: see, redeliver, enable");
  webhooks
    .command('list')
    .description('events not yet delivered (or, with --failed, those that failed their whole schedule)')
    .option('--failed', 'only events that failed every attempt and wait for `webhooks redeliver`')
    .option('--downgrade <workflowId>', "one downgrade's events, delivered ones too")
    .action(async (options: { failed?: boolean; downgrade?: string }) => {
      const api = io.api();
      const events: NotificationSummary[] = [];
      let cursor: string | undefined;
      do {
        const { body } = await api.get<{ events: NotificationSummary[]; nextCursor?: string }>(
          'v1/webhooks/events',
          {
            status: options.failed ? 'failed' : undefined,
            downgrade: options.downgrade,
            limit: PAGE_SIZE,
            cursor,
          },
        );
        events.push(...body.events);
        cursor = body.nextCursor;
      } while (cursor);
      print(events, events.length === 0 ? 'no events' : events.map(describeEvent).join('\n'));
    });
  webhooks
    .command('redeliver')
    .description('start a new schedule for failed events; each downgrade receives its events in order')
    .option('--downgrade <workflowId>', "only this downgrade's")
    .addOption(channel)
    .action(async (options: { downgrade?: string; channel?: Channel }) => {
      const { redelivered } = await io.api().post<{ redelivered: number }>('v1/webhooks/redeliver', {
        downgrade: options.downgrade,
        channel: options.channel,
      });
      print({ redelivered }, `${redelivered} failed events queued for delivery again`);
    });
  webhooks
    .command('enable')
    .description('deliver again to the webhook endpoint after it answered 410; held events follow in order')
    .action(async () => {
      const { enabled } = await io.api().post<{ enabled: boolean }>('v1/webhooks/endpoint/enable');
      print({ enabled }, enabled ? 'webhook endpoint enabled' : 'the webhook endpoint was not disabled');
    });
  webhooks
    .command('status')
    .description('whether the webhook endpoint is enabled, and how many events wait')
    .action(async () => {
      const { body: endpoint } = await io.api().get<Endpoint>('v1/webhooks/endpoint');
      const state =
        endpoint.state === 'not_configured'
          ? 'not configured'
          : endpoint.state === 'disabled'
            ? `disabled since ${endpoint.disabledSince} (${endpoint.reason})`
            : 'enabled';
      print(
        endpoint,
        `webhook endpoint: ${state}\nundelivered: ${endpoint.pending} pending, ${endpoint.failed} failed`,
      );
    });
}

function describeEvent(event: NotificationSummary): string {
  const when =
    event.status === 'delivered'
      ? `delivered ${event.deliveredAt}`
      : event.status === 'failed'
        ? `failed after ${event.attempts} attempts (${event.lastError ?? 'no answer'})`
        : `next attempt ${event.nextAttemptAt}${event.attempts ? `, ${event.attempts} failed (${event.lastError ?? ''})` : ''}`;
  return `${event.eventId} ${event.channel} ${event.stream} ${event.eventType} recorded ${event.createdAt}: ${when}`;
}
