import { createHmac } from 'node:crypto';
import got, { RequestError } from 'got';
import { Webhook } from 'standardwebhooks';
import type { Notification } from '../store/notifications.js';
import type { DeliveryAnswer } from './channel.js';

export interface WebhookSigning {
  /** Standard Webhooks secrets (`whsec_…`): each event carries a signature by every one, for rotation. */
  secrets: readonly string[];
  /** The HMAC of the body alone in `Downgrade-HMAC-SHA256`, for receivers written before Standard Webhooks. */
  legacySecret?: string;
}

/** Posts events to the application's endpoint, signed per Standard Webhooks (and the legacy header). */
export class WebhookSender {
  readonly #signers: Webhook[];

  constructor(
    readonly url: string,
    private readonly signing: WebhookSigning,
    private readonly timeoutMs = 10_000,
  ) {
    this.#signers = signing.secrets.map((secret) => new Webhook(secret));
  }

  /** Signs at the time of sending: the timestamp a receiver checks is the attempt's, not the event's. */
  headers(notification: Pick<Notification, 'eventId' | 'body'>, now = new Date()): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#signers.length > 0) {
      headers['webhook-id'] = notification.eventId;
      headers['webhook-timestamp'] = String(Math.floor(now.getTime() / 1000));
      headers['webhook-signature'] = this.#signers
        .map((signer) => signer.sign(notification.eventId, now, notification.body))
        .join(' ');
    }
    if (this.signing.legacySecret) {
      headers['downgrade-hmac-sha256'] = createHmac('sha256', this.signing.legacySecret)
        .update(notification.body)
        .digest('base64');
    }
    return headers;
  }

  async send(notification: Notification): Promise<DeliveryAnswer> {
    try {
      const response = await got.post(this.url, {
        body: notification.body,
        headers: this.headers(notification),
        timeout: { request: this.timeoutMs },
        retry: { limit: 0 },
        followRedirect: false,
        throwHttpErrors: false,
      });
      const statusCode = response.statusCode;
      if (statusCode >= 200 && statusCode < 300) return { delivered: true, statusCode };
      return { delivered: false, statusCode, error: `answered ${statusCode}`, gone: statusCode === 410 };
    } catch (error) {
      // The error's code or message only: a request error's full text would carry the URL's query.
      const reason = error instanceof RequestError ? (error.code ?? error.name) : 'request failed';
      return { delivered: false, error: reason, gone: false };
    }
  }
}
