import { Client } from '@temporalio/client';
import type { DataConverter, MetricMeter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { ActivityDeps } from './activities/deps.js';
import { createStores, type Stores } from './store/stores.js';
import { REDIRECT_PATH } from './contracts/callbackPaths.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from './contracts/callbackPaths.js';
import { StateSigner } from './contracts/stateToken.js';
import type { Config } from './config.js';
import { CronofyClient } from './cronofy/client.js';
import { cronofyCallMetrics } from './observability/metrics.js';
import { tracingClientInterceptors } from './observability/tracing.js';
import { openDatabase, type Database } from './store/database.js';
import { Keyring } from './store/encryption.js';
import { Notifications } from './store/notifications.js';
import { NotificationDispatcher } from './notifications/dispatcher.js';
import { WebhookSender } from './notifications/webhook.js';
import { EmailSender } from './notifications/email.js';
import { temporalConnectionOptions, type TemporalConnectionConfig } from './temporalConnection.js';

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

export interface Services extends Stores {
  database: Database;
  stateSigner: StateSigner;
  activityDeps: ActivityDeps;
  /** Delivers recorded events; the worker role starts it. */
  notifications: NotificationDispatcher;
  close(): Promise<void>;
}

/** Builds what the worker and the callback server share, from configuration. */
export async function createServices(
  config: Config,
  cronofy: CronofyTarget,
  options: { meter?: MetricMeter } = {},
): Promise<Services> {
  const database = await openDatabase(config.DATABASE_URL);
  const stateSigner = new StateSigner(config.STATE_SIGNING_SECRET);
  const client = new CronofyClient({
    clientId: cronofy.clientId,
    clientSecret: cronofy.clientSecret,
    dataCentre: config.CRONOFY_DATA_CENTER,
    hosts: cronofy.apiUrl && cronofy.appUrl ? { api: cronofy.apiUrl, app: cronofy.appUrl } : undefined,
    onCall: cronofyCallMetrics(),
  });
  const notifications = new NotificationDispatcher(new Notifications(database), {
    webhook: config.APP_WEBHOOK_URL
      ? new WebhookSender(config.APP_WEBHOOK_URL, {
          secrets: config.APP_WEBHOOK_SIGNING_SECRETS ?? [],
          legacySecret: config.APP_WEBHOOK_SECRET,
        })
      : undefined,
    email:
      config.SMTP_URL && config.EMAIL_FROM
        ? await EmailSender.create({
            smtpUrl: config.SMTP_URL,
            from: config.EMAIL_FROM,
            branding: { appName: config.APP_NAME, supportEmail: config.APP_SUPPORT_EMAIL },
            templatesDir: config.EMAIL_TEMPLATES_DIR,
          })
        : undefined,
    retryScheduleMs: config.NOTIFICATION_RETRY_SCHEDULE,
    meter: options.meter,
    logLevel: config.LOG_LEVEL,
  });
  const stores = createStores(database, Keyring.parse(config.CREDENTIAL_KEYS));
  const activityDeps: ActivityDeps = {
    ...stores,
    cronofy: client,
    stateSigner,
    redirectUri: redirectUri(config),
    serviceAccountCallbackUrl: new URL(SERVICE_ACCOUNT_CALLBACK_PATH, config.callbackBaseUrl).toString(),
    temporalUiUrl: config.temporalUiUrl,
    notifications: notifications.enabled ? notifications : undefined,
  };
  return {
    database,
    ...stores,
    stateSigner,
    activityDeps,
    notifications,
    close: async () => {
      await notifications.stop();
      await database.close();
    },
  };
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
