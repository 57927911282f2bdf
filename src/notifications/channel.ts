import type { Notification } from '../store/notifications.js';

/** What one attempt came to. `gone`: the endpoint answered 410, which disables it (Standard Webhooks). */
export type DeliveryAnswer =
  | { delivered: true; statusCode?: number }
  | { delivered: false; statusCode?: number; error: string; gone?: boolean };

/** The person's mailbox: which events become a message, and sending one. */
export interface EmailChannel {
  wants(eventType: string, body: string): boolean;
  send(notification: Notification): Promise<DeliveryAnswer>;
}
