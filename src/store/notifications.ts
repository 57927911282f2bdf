import type { Database } from './database.js';

export const CHANNELS = ['webhook', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];

/** One event on its way to one channel: the application's webhook, or the person's mailbox. */
export interface Notification {
  /** Stable across attempts and redeliveries: the Standard Webhooks `webhook-id`. */
  eventId: string;
  channel: Channel;
  /** The downgrade (its workflow id) the event is about; its events are delivered in the order recorded. */
  stream: string;
  eventType: string;
  /** The event as the application receives it (JSON). */
  body: string;
  /** An email channel's address. */
  recipient?: string;
  /** Failed attempts so far, of this schedule (a redelivery starts a new one). */
  attempts: number;
  createdAt: Date;
}

export type NotificationStatus = 'pending' | 'delivered' | 'failed';

export interface NotificationSummary {
  eventId: string;
  channel: Channel;
  stream: string;
  eventType: string;
  status: NotificationStatus;
  attempts: number;
  lastError?: string;
  createdAt: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
}

type Row = Record<string, unknown>;

/** What every view of an event reads from its row. */
function eventOf(row: Row) {
  return {
    eventId: row.event_id as string,
    channel: row.channel as Channel,
    stream: row.stream as string,
    eventType: row.event_type as string,
    attempts: row.attempts as number,
  };
}

function toNotification(row: Row): Notification {
  return {
    ...eventOf(row),
    body: row.body as string,
    recipient: (row.recipient as string | null) ?? undefined,
    createdAt: new Date(row.created_at as string | Date),
  };
}

function iso(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : new Date(value as string | Date).toISOString();
}

/**
 * The outbox: every event a downgrade emits is recorded here by the workflow (through an activity) and delivered
 * from here by the dispatcher, so that no delivery is ever part of a downgrade. Events of one downgrade and channel
 * go out in the order they were recorded: only the oldest undelivered one (its stream's head) is ever attempted,
 * and a head that failed its whole schedule holds the ones behind it until an operator redelivers it.
 */
export class Notifications {
  constructor(private readonly db: Database) {}

  /** Records an event once: recording it again (a retried activity) changes nothing. */
  async record(notification: Omit<Notification, 'attempts' | 'createdAt'>): Promise<void> {
    await this.db.query(
      `INSERT INTO notifications (event_id, channel, stream, event_type, body, recipient)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, channel) DO NOTHING`,
      [
        notification.eventId,
        notification.channel,
        notification.stream,
        notification.eventType,
        notification.body,
        notification.recipient ?? null,
      ],
    );
  }

  /**
   * Leases up to `limit` stream heads that are due on `channels`, for `leaseMs`: another dispatcher skips them
   * meanwhile, and one that died holding them lets them go when the lease ends.
   */
  async claimDue(channels: readonly Channel[], limit: number, leaseMs: number): Promise<Notification[]> {
    if (channels.length === 0) return [];
    const rows = await this.db.query(
      `WITH heads AS (
         SELECT DISTINCT ON (stream, channel) event_id, channel, status, next_attempt_at, locked_until
         FROM notifications
         WHERE status <> 'delivered' AND channel = ANY($1::text[])
         ORDER BY stream, channel, seq
       ), due AS (
         SELECT event_id, channel FROM heads
         WHERE status = 'pending' AND next_attempt_at <= now()
           AND (locked_until IS NULL OR locked_until < now())
         LIMIT $2
       )
       UPDATE notifications n SET locked_until = now() + make_interval(secs => $3::double precision / 1000)
       FROM due
       WHERE n.event_id = due.event_id AND n.channel = due.channel AND n.status = 'pending'
         AND (n.locked_until IS NULL OR n.locked_until < now())
       RETURNING n.*`,
      [channels, limit, leaseMs],
    );
    return rows.map(toNotification);
  }

  async delivered(notification: Notification, statusCode?: number): Promise<void> {
    await this.#attempt(notification, 'delivered', statusCode);
    await this.db.query(
      `UPDATE notifications SET status = 'delivered', delivered_at = now(), locked_until = NULL, last_error = NULL
       WHERE event_id = $1 AND channel = $2`,
      [notification.eventId, notification.channel],
    );
  }

  /**
   * A failed attempt: the next one after `retryInMs`, or, with none left in the schedule, the event is failed
   * (and holds its stream) until an operator redelivers it.
   */
  async attemptFailed(
    notification: Notification,
    error: string,
    retryInMs: number | undefined,
    statusCode?: number,
  ): Promise<void> {
    await this.#attempt(notification, 'failed', statusCode, error);
    await this.db.query(
      `UPDATE notifications SET attempts = attempts + 1, last_error = $3, locked_until = NULL,
         status = CASE WHEN $4::double precision IS NULL THEN 'failed' ELSE 'pending' END,
         next_attempt_at = CASE WHEN $4::double precision IS NULL THEN next_attempt_at
                                ELSE now() + make_interval(secs => $4::double precision / 1000) END
       WHERE event_id = $1 AND channel = $2`,
      [notification.eventId, notification.channel, error, retryInMs ?? null],
    );
  }

  /** The endpoint refused the event for good (410): it waits, unchanged, for the endpoint to be enabled again. */
  async endpointGone(notification: Notification, url: string, statusCode: number): Promise<void> {
    await this.#attempt(notification, 'endpoint_disabled', statusCode);
    await this.db.query(`UPDATE notifications SET locked_until = NULL WHERE event_id = $1 AND channel = $2`, [
      notification.eventId,
      notification.channel,
    ]);
    await this.db.query(
      `INSERT INTO webhook_endpoints (url, disabled_at, disabled_reason) VALUES ($1, now(), $2)
       ON CONFLICT (url) DO UPDATE SET disabled_at = now(), disabled_reason = $2`,
      [url, `answered ${statusCode}`],
    );
  }

  async #attempt(notification: Notification, outcome: string, statusCode?: number, error?: string) {
    await this.db.query(
      `INSERT INTO notification_attempts (event_id, channel, outcome, status_code, error)
       VALUES ($1, $2, $3, $4, $5)`,
      [notification.eventId, notification.channel, outcome, statusCode ?? null, error ?? null],
    );
  }

  /** When the endpoint was disabled and why, or undefined while it is enabled. */
  async endpointDisabled(url: string): Promise<{ since: string; reason: string } | undefined> {
    const [row] = await this.db.query(
      'SELECT disabled_at, disabled_reason FROM webhook_endpoints WHERE url = $1 AND disabled_at IS NOT NULL',
      [url],
    );
    return row ? { since: iso(row.disabled_at)!, reason: row.disabled_reason as string } : undefined;
  }

  /** Enables the endpoint again; its events, held meanwhile, go out in order. Whether it was disabled. */
  async enableEndpoint(url: string): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL
       WHERE url = $1 AND disabled_at IS NOT NULL RETURNING url`,
      [url],
    );
    return rows.length > 0;
  }

  /**
   * Starts a new schedule for failed events (of one downgrade, or all): each goes out again before the events its
   * failure held, in order. How many were failed.
   */
  async redeliver(filter: { stream?: string; channel?: Channel } = {}): Promise<number> {
    const rows = await this.db.query(
      `UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
       WHERE status = 'failed' AND ($1::text IS NULL OR stream = $1) AND ($2::text IS NULL OR channel = $2)
       RETURNING event_id`,
      [filter.stream ?? null, filter.channel ?? null],
    );
    return rows.length;
  }

  /** Events by status, oldest first, for operators. */
  async list(
    filter: { status?: NotificationStatus; stream?: string; limit?: number } = {},
  ): Promise<NotificationSummary[]> {
    return (await this.page(filter)).events;
  }

  /**
   * A page of `list`: `after` is the previous page's `next`, the position of its last event, so a page holds the
   * same events whatever was recorded since.
   */
  async page(
    filter: { status?: NotificationStatus; stream?: string; limit?: number; after?: number } = {},
  ): Promise<{ events: NotificationSummary[]; next?: number }> {
    const limit = filter.limit ?? 1000;
    // One row more than the page tells whether another page follows.
    const rows = await this.db.query(
      `SELECT seq, event_id, channel, stream, event_type, status, attempts, last_error, created_at, next_attempt_at,
              delivered_at
       FROM notifications
       WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR stream = $2) AND seq > $3
       ORDER BY seq LIMIT $4`,
      [filter.status ?? null, filter.stream ?? null, filter.after ?? 0, limit + 1],
    );
    const page = rows.slice(0, limit);
    return {
      events: page.map((row) => ({
        ...eventOf(row),
        status: row.status as NotificationStatus,
        lastError: (row.last_error as string | null) ?? undefined,
        createdAt: iso(row.created_at)!,
        nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : undefined,
        deliveredAt: iso(row.delivered_at),
      })),
      next: rows.length > limit ? Number(page.at(-1)!.seq) : undefined,
    };
  }

  /** How many events wait for delivery and how many failed their whole schedule, whatever their number. */
  async undeliveredCounts(): Promise<{ pending: number; failed: number }> {
    const rows = await this.db.query(
      `SELECT status, count(*)::int AS count FROM notifications WHERE status <> 'delivered' GROUP BY status`,
    );
    const count = (status: string) => Number(rows.find((row) => row.status === status)?.count ?? 0);
    return { pending: count('pending'), failed: count('failed') };
  }

  /** How old the oldest undelivered event is, in seconds (0 when every event is delivered). */
  async oldestUndeliveredAgeSeconds(): Promise<number> {
    const [row] = await this.db.query(
      `SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::double precision AS age
       FROM notifications WHERE status <> 'delivered'`,
    );
    return Number(row?.age ?? 0);
  }
}
