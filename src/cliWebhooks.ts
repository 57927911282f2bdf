/**
 * `cronofy-downgrade webhooks …`: the outbox of events (store/notifications.ts), for operators. It opens the
 * service's database only, which must be the PostgreSQL DATABASE_URL the service uses.
 */
import { Option, type Command } from 'commander';
import { onServiceDatabase } from './cliDatabase.js';
import type { Config } from './config.js';
import { CHANNELS, Notifications, type Channel, type NotificationSummary } from './store/notifications.js';

export interface WebhooksIo {
  config(): Config;
  json(): boolean;
  out(text: string): void;
  usageError(message: string): Error;
}

/** Adds the `webhooks` commands to `program`, whose output and exit settings they inherit. */
export function addWebhooksCommands(program: Command, io: WebhooksIo): void {
  const withOutbox = <O>(run: (outbox: Notifications, config: Config, options: O) => Promise<void>) =>
    onServiceDatabase<O>(io, (database, config, options) =>
      run(new Notifications(database), config, options),
    );
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
    .action(
      withOutbox(async (outbox, _config, options: { failed?: boolean; downgrade?: string }) => {
        const events = await outbox.list({
          status: options.failed ? 'failed' : options.downgrade ? undefined : 'pending',
          stream: options.downgrade,
        });
        print(events, events.length === 0 ? 'no events' : events.map(describeEvent).join('\n'));
      }),
    );
  webhooks
    .command('redeliver')
    .description('start a new schedule for failed events; each downgrade receives its events in order')
    .option('--downgrade <workflowId>', "only this downgrade's")
    .addOption(channel)
    .action(
      withOutbox(async (outbox, _config, options: { downgrade?: string; channel?: Channel }) => {
        const count = await outbox.redeliver({ stream: options.downgrade, channel: options.channel });
        print({ redelivered: count }, `${count} failed events queued for delivery again`);
      }),
    );
  webhooks
    .command('enable')
    .description('deliver again to the webhook endpoint after it answered 410; held events follow in order')
    .action(
      withOutbox(async (outbox, { APP_WEBHOOK_URL }) => {
        if (!APP_WEBHOOK_URL) throw io.usageError('no webhook is configured (APP_WEBHOOK_URL)');
        const enabled = await outbox.enableEndpoint(APP_WEBHOOK_URL);
        print({ enabled }, enabled ? 'webhook endpoint enabled' : 'the webhook endpoint was not disabled');
      }),
    );
  webhooks
    .command('status')
    .description('whether the webhook endpoint is enabled, and how many events wait')
    .action(
      withOutbox(async (outbox, config) => {
        const url = config.APP_WEBHOOK_URL;
        const disabled = url ? await outbox.endpointDisabled(url) : undefined;
        const pending = (await outbox.list({ status: 'pending' })).length;
        const failed = (await outbox.list({ status: 'failed' })).length;
        const state = !url
          ? 'not configured'
          : disabled
            ? `disabled since ${disabled.since} (${disabled.reason})`
            : 'enabled';
        print(
          { endpoint: state, pending, failed },
          `webhook endpoint: ${state}\nundelivered: ${pending} pending, ${failed} failed`,
        );
      }),
    );
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
