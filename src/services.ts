import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { ActivityDeps } from './activities/index.js';
import { REDIRECT_PATH } from './callbacks/getReauthorizationRedirect.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from './callbacks/postServiceAccountCallback.js';
import { StateSigner } from './callbacks/stateToken.js';
import type { Config } from './config.js';
import { EncryptionCodec } from './codec/encryptionCodec.js';
import { failureConverterPath } from './worker.js';
import { CronofyClient } from './cronofy/client.js';
import { CredentialStore } from './store/credentialStore.js';
import { openDatabase, type Database } from './store/database.js';
import { EnterpriseUsers } from './store/enterpriseUsers.js';
import { Keyring } from './store/encryption.js';

/** The simulator's application credentials when no Cronofy credentials are configured. */
export const SIMULATOR_CLIENT = {
  clientId: 'local-downgrade-app',
  clientSecret: 'local-simulator-secret',
} as const;

export interface CronofyTarget {
  clientId: string;
  clientSecret: string;
  apiUrl?: string;
  appUrl?: string;
}

/** Which Cronofy to talk to: the configured one, or the simulator at `simulatorUrl`. */
export function cronofyTarget(config: Config, simulatorUrl?: string): CronofyTarget {
  if (!config.useSimulator) {
    return {
      clientId: config.CRONOFY_CLIENT_ID!,
      clientSecret: config.CRONOFY_CLIENT_SECRET!,
      apiUrl: config.CRONOFY_API_URL,
      appUrl: config.CRONOFY_APP_URL,
    };
  }
  const url = simulatorUrl ?? `http://127.0.0.1:${config.SIMULATOR_PORT}`;
  return { ...SIMULATOR_CLIENT, apiUrl: url, appUrl: url };
}

export function redirectUri(config: Config): string {
  return new URL(REDIRECT_PATH, config.callbackBaseUrl).toString();
}

/**
 * Encrypts every payload the service hands Temporal (workflow inputs and results, activity arguments, signals,
 * queries, memos, failure messages and stack traces) under PAYLOAD_ENCRYPTION_KEYS. The client, the workers and the
 * codec server must share it.
 */
export function payloadEncryption(config: Pick<Config, 'PAYLOAD_ENCRYPTION_KEYS'>): {
  codec: EncryptionCodec;
  dataConverter: DataConverter;
} {
  const codec = EncryptionCodec.fromSpec(config.PAYLOAD_ENCRYPTION_KEYS);
  return { codec, dataConverter: { payloadCodecs: [codec], failureConverterPath } };
}

export interface Services {
  database: Database;
  store: CredentialStore;
  enterpriseUsers: EnterpriseUsers;
  stateSigner: StateSigner;
  activityDeps: ActivityDeps;
  close(): Promise<void>;
}

/** Builds what the worker and the callback server share, from configuration. */
export async function createServices(config: Config, cronofy: CronofyTarget): Promise<Services> {
  const database = await openDatabase(config.DATABASE_URL);
  const store = new CredentialStore(database, Keyring.parse(config.CREDENTIAL_KEYS));
  const stateSigner = new StateSigner(config.STATE_SIGNING_SECRET);
  const client = new CronofyClient({
    clientId: cronofy.clientId,
    clientSecret: cronofy.clientSecret,
    dataCentre: config.CRONOFY_DATA_CENTER,
    hosts: cronofy.apiUrl && cronofy.appUrl ? { api: cronofy.apiUrl, app: cronofy.appUrl } : undefined,
  });
  const webhook =
    config.APP_WEBHOOK_URL && config.APP_WEBHOOK_SECRET
      ? { url: config.APP_WEBHOOK_URL, secret: config.APP_WEBHOOK_SECRET }
      : undefined;
  const enterpriseUsers = new EnterpriseUsers(database);
  return {
    database,
    store,
    enterpriseUsers,
    stateSigner,
    activityDeps: {
      cronofy: client,
      store,
      stateSigner,
      enterpriseUsers,
      redirectUri: redirectUri(config),
      serviceAccountCallbackUrl: new URL(SERVICE_ACCOUNT_CALLBACK_PATH, config.callbackBaseUrl).toString(),
      webhook,
    },
    close: () => database.close(),
  };
}

/** Connects the client (encoding through `dataConverter`) and the workers' connection to Temporal. */
export async function connectTemporal(config: Config, dataConverter: DataConverter) {
  const [clientConnection, workerConnection] = await Promise.all([
    Connection.connect({ address: config.TEMPORAL_ADDRESS }),
    NativeConnection.connect({ address: config.TEMPORAL_ADDRESS }),
  ]);
  const client = new Client({
    connection: clientConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter,
  });
  return {
    client,
    workerConnection,
    async close() {
      await clientConnection.close();
      await workerConnection.close();
    },
  };
}
