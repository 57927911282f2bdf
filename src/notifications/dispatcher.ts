import type { MetricMeter } from '@temporalio/common';
import { createLogger } from '../logger.js';
import type { Channel, Notification, Notifications } from '../store/notifications.js';
import type { DeliveryAnswer, EmailChannel } from './channel.js';
import type { WebhookSender } from './webhook.js';

/**
 * Standard Webhooks' schedule, stretched to about three days: the waits after each failed attempt (the first
 * attempt is immediate). After the last one the event is failed and waits for an operator.
 */
export const DEFAULT_RETRY_SCHEDULE_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  14 * 3_600_000,
  24 * 3_600_000,
];

export interface DispatcherOptions {
  webhook?: WebhookSender;
  email?: EmailChannel;
  retryScheduleMs?: readonly number[];
  /** How often due retries are looked for when nothing wakes the dispatcher. */
  pollIntervalMs?: number;
  /** Metrics go to this meter (the Runtime's); none without. */
  meter?: MetricMeter;
  logLevel?: string;
}

const BATCH = 50;
/** Longer than any one delivery (a 10-second request), so a lease never ends under a live attempt. */
const LEASE_MS = 20_000;

export const NOTIFICATION_ATTEMPTS = 'downgrade_notification_attempts';
export const NOTIFICATION_FAILURES = 'downgrade_notification_failures';
export const NOTIFICATION_OLDEST_UNDELIVERED = 'downgrade_notification_oldest_undelivered_seconds';

/**
 * Delivers the outbox (store/notifications.ts): each stream's oldest undelivered event per channel, on its retry
 * schedule, until it is delivered or fails for good. It never touches a workflow, so nothing it meets (an endpoint
 * down for days, a worker killed mid-schedule) can change how a downgrade ends. Every worker process runs one; the
 * store's leases keep two from sending one event at once.
 */
export class NotificationDispatcher {
  readonly #log;
  readonly #schedule: readonly number[];
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly store: Notifications,
    private readonly options: DispatcherOptions,
  ) {
    this.#schedule = options.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
    this.#log = createLogger(options.logLevel ?? 'info', 'notifications');
  }

  /** Whether any channel is configured: without one, events are not even recorded. */
  get enabled(): boolean {
    return this.options.webhook !== undefined || this.options.email !== undefined;
  }

  /** Records an event for each channel it is for, and wakes the dispatcher. Recording it twice is harmless. */
  async record(event: {
    eventId: string;
    stream: string;
    eventType: string;
    body: string;
    email?: string;
  }): Promise<void> {
    const { webhook, email } = this.options;
    if (webhook) await this.store.record({ ...event, channel: 'webhook' });
    if (email && event.email && email.wants(event.eventType, event.body)) {
      await this.store.record({ ...event, channel: 'email', recipient: event.email });
    }
    this.#wake?.();
  }

  start(): void {
    if (!this.enabled || this.#running) return;
    this.#running = this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const pollIntervalMs = this.options.pollIntervalMs ?? 1_000;
    while (!this.#stopped) {
      let claimed = 0;
      try {
        const due = await this.store.claimDue(await this.#openChannels(), BATCH, LEASE_MS);
        claimed = due.length;
        await Promise.all(due.map((notification) => this.#deliver(notification)));
        if (claimed === 0) {
          this.options.meter
            ?.createGauge(
              NOTIFICATION_OLDEST_UNDELIVERED,
              'float',
              's',
              'Age of the oldest undelivered event',
            )
            .set(await this.store.oldestUndeliveredAgeSeconds());
        }
      } catch (error) {
        // The database is away: the events wait in it; try again after the pause.
        this.#log.warn({ err: error }, 'could not read the notification outbox');
      }
      if (claimed > 0 || this.#stopped) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollIntervalMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** The configured channels, less a webhook endpoint that answered 410 until an operator enables it. */
  async #openChannels(): Promise<Channel[]> {
    const channels: Channel[] = [];
    const { webhook, email } = this.options;
    if (webhook && !(await this.store.endpointDisabled(webhook.url))) channels.push('webhook');
    if (email) channels.push('email');
    return channels;
  }

  async #deliver(notification: Notification): Promise<void> {
    const answer: DeliveryAnswer =
      notification.channel === 'webhook'
        ? await this.options.webhook!.send(notification)
        : await this.options.email!.send(notification);
    const { statusCode } = answer;
    const tags = { channel: notification.channel };
    this.options.meter
      ?.createCounter(NOTIFICATION_ATTEMPTS, undefined, 'Delivery attempts, by channel')
      .add(1, tags);
    if (answer.delivered) {
      await this.store.delivered(notification, statusCode);
      return;
    }
    this.options.meter
      ?.createCounter(NOTIFICATION_FAILURES, undefined, 'Failed delivery attempts, by channel')
      .add(1, tags);
    if (answer.gone) {
      this.#log.warn(
        { eventId: notification.eventId },
        'the webhook endpoint answered 410: disabled until an operator enables it',
      );
      await this.store.endpointGone(notification, this.options.webhook!.url, statusCode ?? 410);
      return;
    }
    const retryInMs = this.#schedule[notification.attempts];
    if (retryInMs === undefined) {
      this.#log.warn(
        { eventId: notification.eventId, channel: notification.channel, error: answer.error },
        'delivery failed on every attempt of its schedule; it waits for `webhooks redeliver`',
      );
    }
    await this.store.attemptFailed(notification, answer.error, retryInMs, statusCode);
  }
}
