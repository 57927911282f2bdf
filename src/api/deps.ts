import type { Client } from '@temporalio/client';
import { CampaignClient } from '../client/campaignClient.js';
import { EnterpriseClient } from '../client/enterpriseClient.js';
import { IndividualClient, type DowngradeDefaults } from '../client/individualClient.js';
import type { Database } from '../store/database.js';
import type { Stores } from '../store/stores.js';
import { ApiKeys, type ApiKey, type ApiScope } from '../store/apiKeys.js';
import type { IdempotentRequests } from '../store/idempotency.js';
import { Notifications } from '../store/notifications.js';
import type { Uploads } from '../store/uploads.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a key needs for this route; a route without one is public (the document, its reference page). */
    scope?: ApiScope;
  }
  interface FastifyRequest {
    /** The key the request was authenticated with, on routes that need one. */
    apiKey?: ApiKey;
  }
}

/** What the API's routes work with. */
export interface ApiDeps {
  keys: ApiKeys;
  idempotency: IdempotentRequests;
  individual: IndividualClient;
  domains: EnterpriseClient;
  campaigns: CampaignClient;
  uploads: Uploads;
  notifications: Notifications;
  /** The application's webhook endpoint (APP_WEBHOOK_URL), if one is configured. */
  webhookUrl?: string;
}

/** The API's dependencies over the service's database and stores and its Temporal client. */
export function createApiDeps(
  stores: Stores & { database: Database },
  temporal: {
    client: Client;
    taskQueue: string;
    defaults: DowngradeDefaults;
    cronofyCallsPerSecond?: number;
    temporalUiUrl?: string;
  },
  webhookUrl?: string,
): ApiDeps {
  const { database, store, enterpriseUsers, campaigns, uploads, idempotentRequests } = stores;
  const clients = {
    temporal: temporal.client,
    taskQueue: temporal.taskQueue,
    defaults: temporal.defaults,
    cronofyCallsPerSecond: temporal.cronofyCallsPerSecond,
    temporalUiUrl: temporal.temporalUiUrl,
  };
  return {
    keys: new ApiKeys(database),
    idempotency: idempotentRequests,
    individual: new IndividualClient({ ...clients, store }),
    domains: new EnterpriseClient({ ...clients, store, users: enterpriseUsers }),
    campaigns: new CampaignClient({ ...clients, store, campaigns }),
    uploads,
    notifications: new Notifications(database),
    webhookUrl,
  };
}
