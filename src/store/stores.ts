import { Campaigns } from './campaigns.js';
import { CredentialStore } from './credentialStore.js';
import type { Database } from './database.js';
import type { Keyring } from './encryption.js';
import { EnterpriseUsers } from './enterpriseUsers.js';
import { IdempotentRequests } from './idempotency.js';
import { Uploads } from './uploads.js';

/** The stores the activities (and the service's clients and callback server) work with, over one database. */
export interface Stores {
  store: CredentialStore;
  enterpriseUsers: EnterpriseUsers;
  campaigns: Campaigns;
  /** The HTTP API's previews' people, uploaded page by page. */
  uploads: Uploads;
  /** The HTTP API's answers to POSTs with an `Idempotency-Key`. */
  idempotentRequests: IdempotentRequests;
}

/** The one way the service, its CLI, the tests' stack and the benchmarks make the stores: over `database`. */
export function createStores(database: Database, keyring: Keyring): Stores {
  return {
    store: new CredentialStore(database, keyring),
    enterpriseUsers: new EnterpriseUsers(database),
    campaigns: new Campaigns(database),
    uploads: new Uploads(database, keyring),
    idempotentRequests: new IdempotentRequests(database, keyring),
  };
}
