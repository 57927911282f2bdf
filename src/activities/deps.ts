import type { CronofyClient } from '../cronofy/client.js';
import type { StateSigner } from '../contracts/stateToken.js';
import type { Stores } from '../store/stores.js';

/** Where a downgrade's events are recorded for delivery (src/notifications/dispatcher.ts). */
export interface NotificationRecorder {
  record(event: {
    eventId: string;
    stream: string;
    eventType: string;
    body: string;
    email?: string;
  }): Promise<void>;
}

export interface ActivityDeps extends Stores {
  cronofy: CronofyClient;
  stateSigner: StateSigner;
  /** The callback server's redirect endpoint, registered with Cronofy. */
  redirectUri: string;
  /** Where Cronofy posts each Enterprise Connect user's access. */
  serviceAccountCallbackUrl: string;
  /** Refresh a service-account token when less than this is left of it (default 2 minutes). */
  serviceAccountRefreshMarginMs?: number;
  /** The Temporal UI operators use (its public URL): each domain user's run links to its domain there. */
  temporalUiUrl?: string;
  /** Without it (no webhook and no email configured), events are not recorded. */
  notifications?: NotificationRecorder;
}

export interface ExchangedGrant {
  credentialRef: string;
  sub: string;
  providerName: string;
  providerService?: string;
}
