import { readFileSync } from 'node:fs';
import { Client, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { ActivityDeps } from './activities/deps.js';
import { REDIRECT_PATH } from './contracts/callbackPaths.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from './contracts/callbackPaths.js';
import { StateSigner } from './contracts/stateToken.js';
import type { Config } from './config.js';
import { CronofyClient } from './cronofy/client.js';
import { cronofyCallMetrics } from './observability/metrics.js';
import { tracingClientInterceptors } from './observability/tracing.js';
import { CredentialStore } from './store/credentialStore.js';
import { openDatabase, type Database } from './store/database.js';
import { EnterpriseUsers } from './store/enterpriseUsers.js';
import { Campaigns } from './store/campaigns.js';
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

export interface Services {
  database: Database;
  store: CredentialStore;
  enterpriseUsers: EnterpriseUsers;
  campaigns: Campaigns;
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
    onCall: cronofyCallMetrics(),
  });
  const webhook =
    config.APP_WEBHOOK_URL && config.APP_WEBHOOK_SECRET
      ? { url: config.APP_WEBHOOK_URL, secret: config.APP_WEBHOOK_SECRET }
      : undefined;
  const enterpriseUsers = new EnterpriseUsers(database);
  const campaigns = new Campaigns(database);
  return {
    database,
    store,
    enterpriseUsers,
    campaigns,
    stateSigner,
    activityDeps: {
      cronofy: client,
      store,
      stateSigner,
      enterpriseUsers,
      campaigns,
      redirectUri: redirectUri(config),
      serviceAccountCallbackUrl: new URL(SERVICE_ACCOUNT_CALLBACK_PATH, config.callbackBaseUrl).toString(),
      webhook,
    },
    close: () => database.close(),
  };
}

type TemporalConnectionConfig = Pick<
  Config,
  | 'TEMPORAL_ADDRESS'
  | 'TEMPORAL_NAMESPACE'
  | 'TEMPORAL_API_KEY'
  | 'TEMPORAL_TLS'
  | 'TEMPORAL_TLS_CERT_PATH'
  | 'TEMPORAL_TLS_KEY_PATH'
  | 'TEMPORAL_TLS_CA_PATH'
  | 'TEMPORAL_TLS_SERVER_NAME'
>;

/**
 * How the client and the workers reach Temporal: plain gRPC to a dev server or a cluster inside the network, or TLS
 * with a client certificate (mTLS) or an API key, as Temporal Cloud requires. Certificate files are read here, once,
 * and an unreadable one is reported by its variable's name.
 */
export function temporalConnectionOptions(config: TemporalConnectionConfig): {
  address: string;
  tls?: TLSConfig | false;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  const clientCertPair =
    config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH
      ? {
          crt: readConfiguredFile('TEMPORAL_TLS_CERT_PATH', config.TEMPORAL_TLS_CERT_PATH),
          key: readConfiguredFile('TEMPORAL_TLS_KEY_PATH', config.TEMPORAL_TLS_KEY_PATH),
        }
      : undefined;
  // parseConfig refuses TEMPORAL_TLS=false together with a key or certificate.
  const useTls =
    config.TEMPORAL_TLS === 'true' || clientCertPair !== undefined || config.TEMPORAL_API_KEY !== undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    tls: useTls
      ? {
          clientCertPair,
          serverRootCACertificate: config.TEMPORAL_TLS_CA_PATH
            ? readConfiguredFile('TEMPORAL_TLS_CA_PATH', config.TEMPORAL_TLS_CA_PATH)
            : undefined,
          serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
        }
      : false,
    ...(config.TEMPORAL_API_KEY
      ? {
          apiKey: config.TEMPORAL_API_KEY,
          // Temporal Cloud's regional endpoints route API-key calls by this header.
          metadata: { 'temporal-namespace': config.TEMPORAL_NAMESPACE },
        }
      : {}),
  };
}

function readConfiguredFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * One connection to Temporal for the client (encoding through `dataConverter`) and the workers: the SDK's native
 * (Rust) gRPC client, which costs the process a fraction of the JavaScript one's CPU per call. With `tracing`, the
 * client's StartWorkflow and SignalWorkflow spans carry their context to the workflows (see
 * observability/tracing.ts); without, no span is made.
 */
export async function connectTemporal(
  config: TemporalConnectionConfig,
  dataConverter: DataConverter,
  options: { tracing?: boolean } = {},
) {
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter,
    interceptors: options.tracing ? tracingClientInterceptors() : undefined,
  });
  return {
    client,
    connection,
    close: () => connection.close(),
  };
}
