import type { CronofyClient } from '../cronofy/client.js';
import type { StateSigner } from '../contracts/stateToken.js';
import type { Campaigns } from '../store/campaigns.js';
import type { CredentialStore } from '../store/credentialStore.js';
import type { EnterpriseUsers } from '../store/enterpriseUsers.js';

export interface ApplicationWebhook {
  url: string;
  secret: string;
}

export interface ActivityDeps {
  cronofy: CronofyClient;
  store: CredentialStore;
  stateSigner: StateSigner;
  /** The callback server's redirect endpoint, registered with Cronofy. */
  redirectUri: string;
  /** Where Cronofy posts each Enterprise Connect user's access. */
  serviceAccountCallbackUrl: string;
  enterpriseUsers: EnterpriseUsers;
  campaigns: Campaigns;
  /** Refresh a service-account token when less than this is left of it (default 2 minutes). */
  serviceAccountRefreshMarginMs?: number;
  webhook?: ApplicationWebhook;
}

export interface ExchangedGrant {
  credentialRef: string;
  sub: string;
  providerName: string;
  providerService?: string;
}
