import type { IndividualClient } from '../client/individualClient.js';
import type { ApiKey, ApiKeys, ApiScope } from '../store/apiKeys.js';
import type { IdempotentRequests } from '../store/idempotency.js';

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
}
