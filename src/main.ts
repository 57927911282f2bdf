/**
 * `npm start`: the whole service on its embedded defaults — a Temporal dev server keeping its data in a file
 * (with the Temporal UI), the Cronofy simulator unless real credentials are configured, the worker, the
 * callback server and the HTTP API. With TEMPORAL_ADDRESS set it uses that Temporal instead of starting one.
 */
import { payloadEncryption } from './codec/payloadEncryption.js';
import { DefaultLogger, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import { REDIRECT_PATH } from './contracts/callbackPaths.js';
import { createApiDeps } from './api/deps.js';
import { startApiServer } from './api/server.js';
import { startCallbackServer } from './callbacks/server.js';
import { temporalCallbackDeps } from './callbacks/temporalSignals.js';
import { startCodecServer } from './codec/codecServer.js';
import { downgradeDefaults, isPostgresUrl, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { runtimeTelemetryOptions } from './observability/metrics.js';
import { setupTracing } from './observability/tracing.js';
import { API_SCOPES } from './store/apiKeys.js';
import { connectTemporal, createServices, cronofyTarget, redirectUri, SIMULATOR_CLIENT } from './services.js';
import { startSimulator } from '../simulator/server.js';
import { startDevServer } from './temporalDevServer.js';
import { createDowngradeWorkers, prebuiltWorkflowBundle } from './worker.js';
import { cronofyTaskQueue } from './workflows/definitions.js';

/**
 * The SDK's logger, less one warning that is the design: the Cronofy task queue's worker runs activities only
 * (createDowngradeWorkers in src/worker.ts), and the SDK warns at each start of a worker without workflows that it
 * does not poll for workflow tasks. Exactly that message from exactly that worker is dropped; every other line,
 * the same message from any other worker included, is logged as before.
 */
class ServiceRuntimeLogger extends DefaultLogger {
  static readonly NO_WORKFLOWS = 'No workflows registered, not polling for workflow tasks';

  constructor(
    level: LogLevel,
    private readonly activitiesOnlyTaskQueue: string,
  ) {
    super(level);
  }

  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const designed =
      level === 'WARN' &&
      message === ServiceRuntimeLogger.NO_WORKFLOWS &&
      meta?.taskQueue === this.activitiesOnlyTaskQueue;
    if (!designed) super.log(level, message, meta);
  }
}

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'main');
Runtime.install({
  logger: new ServiceRuntimeLogger(
    ['debug', 'trace'].includes(config.LOG_LEVEL) ? 'DEBUG' : 'WARN',
    cronofyTaskQueue(config.TEMPORAL_TASK_QUEUE),
  ),
  // The Prometheus endpoint: the SDK's worker metrics and the service's own (src/observability/metrics.ts).
  telemetryOptions: runtimeTelemetryOptions(config.METRICS_BIND_ADDRESS),
  // The SDK would start draining the worker on SIGTERM by itself; stop() below does it, after the callback server.
  shutdownSignals: [],
});
// Before any client or worker exists; a no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
const tracing = setupTracing({
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  serviceName: config.OTEL_SERVICE_NAME,
});
// Stops run first to last; tracing stops last, exporting the spans of everything stopped before it.
const stops: Array<() => Promise<unknown>> = [() => tracing.shutdown()];

async function main() {
  const { codec, dataConverter } = payloadEncryption(config);
  const roles = config.SERVICE_ROLES;
  let codecUrl: string | undefined;
  if (roles.has('codec')) {
    // Decodes payloads for the Temporal CLI and UI; only callers with CODEC_SERVER_TOKEN get an answer.
    const codecServer = await startCodecServer({
      codec,
      token: config.CODEC_SERVER_TOKEN,
      allowedOrigin: config.CODEC_ALLOWED_ORIGIN,
      oidc:
        config.CODEC_OIDC_ISSUER && config.CODEC_OIDC_AUDIENCE
          ? {
              issuer: config.CODEC_OIDC_ISSUER,
              audience: config.CODEC_OIDC_AUDIENCE,
              jwksUrl: config.CODEC_OIDC_JWKS_URL,
            }
          : undefined,
      // The embedded UI cannot send a token; outside production, on loopback, its origin is trusted instead.
      trustAllowedOrigin: process.env.NODE_ENV !== 'production' && isLoopback(config.CODEC_SERVER_HOST),
      host: config.CODEC_SERVER_HOST,
      port: config.CODEC_SERVER_PORT,
      logLevel: config.LOG_LEVEL,
    });
    stops.unshift(() => codecServer.close());
    codecUrl = reachableFromHere(codecServer.url);
  }

  const { embeddedTemporal } = config;
  if (embeddedTemporal) {
    const devServer = await startDevServer({
      port: config.TEMPORAL_DEV_SERVER_PORT,
      uiPort: config.TEMPORAL_UI_PORT,
      dbFile: config.TEMPORAL_DB_FILE,
      uiCodecEndpoint: codecUrl,
    });
    stops.unshift(() => devServer.stop());
    log.info({ address: devServer.address, ui: devServer.uiUrl }, 'Temporal dev server ready');
  }

  let simulatorUrl: string | undefined;
  if (config.useSimulator) {
    const simulator = await startSimulator({
      port: config.SIMULATOR_PORT,
      stateFile: config.SIMULATOR_STATE_FILE,
      clients: [{ ...SIMULATOR_CLIENT, redirectUris: [redirectUri(config)] }],
    });
    simulatorUrl = simulator.url;
    stops.unshift(() => simulator.close());
  }

  const services = await createServices(config, cronofyTarget(config, simulatorUrl), {
    meter: Runtime.instance().metricMeter,
  });
  stops.unshift(() => services.close());
  const temporal = await connectTemporal(config, dataConverter, { tracing: tracing.enabled });
  stops.unshift(() => temporal.close());

  let workerRun: Promise<void> | undefined;
  if (roles.has('worker')) {
    const worker = await createDowngradeWorkers({
      connection: temporal.connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      deps: services.activityDeps,
      cronofyCallsPerSecond: config.CRONOFY_CALLS_PER_SECOND,
      cachedWorkflows: config.WORKER_CACHED_WORKFLOWS,
      workflowBundle: config.WORKFLOW_BUNDLE_PATH
        ? prebuiltWorkflowBundle(config.WORKFLOW_BUNDLE_PATH, { tracing: tracing.enabled })
        : undefined,
      dataConverter,
      workflowSpanSink: tracing.workflowSpanSink,
    });
    const running = worker.run();
    workerRun = running;
    // Events the workflows record are delivered from here (and from every other worker process).
    services.notifications.start();
    stops.unshift(async () => {
      worker.shutdown();
      await running;
    });
  }

  let callbackUrl: string | undefined;
  if (roles.has('callbacks')) {
    const callbacks = await startCallbackServer(
      temporalCallbackDeps(temporal.client, services.store, services.stateSigner),
      {
        host: config.CALLBACK_HOST,
        port: config.CALLBACK_PORT,
        publicBaseUrl: config.callbackBaseUrl,
        logLevel: config.LOG_LEVEL,
        // Counted on the Runtime's Prometheus endpoint, next to the worker's metrics.
        metricMeter: Runtime.instance().metricMeter,
      },
    );
    stops.unshift(() => callbacks.app.close());
    callbackUrl = callbacks.url;
  }

  let apiUrl: string | undefined;
  if (roles.has('api')) {
    const deps = createApiDeps(
      services,
      {
        client: temporal.client,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        defaults: downgradeDefaults(config),
        cronofyCallsPerSecond: config.CRONOFY_CALLS_PER_SECOND,
        temporalUiUrl: config.temporalUiUrl,
      },
      config.APP_WEBHOOK_URL,
    );
    if (config.API_ADMIN_KEY)
      await deps.keys.register(config.API_ADMIN_KEY, 'admin (API_ADMIN_KEY)', API_SCOPES);
    const api = await startApiServer(deps, {
      host: config.API_HOST,
      port: config.API_PORT,
      logLevel: config.LOG_LEVEL,
      requestsPerMinute: config.API_RATE_LIMIT_PER_MINUTE,
    });
    stops.unshift(() => api.app.close());
    apiUrl = reachableFromHere(api.url);
  }

  // Never print the token itself; outside production it was generated into .data/local-secrets.json.
  const codecToken =
    process.env.NODE_ENV === 'production'
      ? '$CODEC_SERVER_TOKEN'
      : '$(node -p "require(\'./.data/local-secrets.json\').CODEC_SERVER_TOKEN")';
  const lines = [
    '',
    'Cronofy downgrade service is running',
    `  Temporal:           ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE})`,
    ...(embeddedTemporal ? [`  Temporal UI:        http://127.0.0.1:${config.TEMPORAL_UI_PORT}`] : []),
    `  Roles:              ${[...roles].join(', ')} (SERVICE_ROLES)`,
    ...(apiUrl
      ? [
          `  HTTP API:           ${apiUrl}/v1  (reference: ${apiUrl}/v1/docs; document: ${apiUrl}/v1/openapi.json)`,
          ...(process.env.NODE_ENV === 'production'
            ? []
            : ['    an admin key is API_ADMIN_KEY in .data/local-secrets.json']),
        ]
      : []),
    ...(callbackUrl
      ? [`  Callback server:    ${callbackUrl}${REDIRECT_PATH}  (public: ${redirectUri(config)})`]
      : []),
    `  Cronofy:            ${simulatorUrl ? `simulator at ${simulatorUrl} (state: ${simulatorUrl}/_sim/state)` : (config.CRONOFY_API_URL ?? `Cronofy ${config.CRONOFY_DATA_CENTER}`)}`,
    `  Credential store:   ${isPostgresUrl(config.DATABASE_URL) ? 'PostgreSQL' : config.DATABASE_URL}`,
    ...(codecUrl
      ? [
          `  Codec server:       ${codecUrl}  (payloads in Temporal are encrypted; this decodes them for the CLI)`,
          `    temporal workflow show -w <id> --codec-endpoint ${codecUrl} --codec-auth "Bearer ${codecToken}"`,
        ]
      : []),
    `  Metrics:            ${config.METRICS_BIND_ADDRESS ? `${reachableFromHere(`http://${config.METRICS_BIND_ADDRESS}`)}/metrics` : 'off (METRICS_BIND_ADDRESS=off)'}`,
    `  Tracing:            ${tracing.enabled ? `OTLP/HTTP to ${config.OTEL_EXPORTER_OTLP_ENDPOINT}` : 'off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans)'}`,
    '',
    'Start a downgrade: npm run demo',
    '',
  ];
  console.log(lines.join('\n'));
  // A worker that stops by itself (a fatal error) ends the process; servers alone keep it running.
  await workerRun;
}

let stopping = false;
async function stop(signal: string, exitCode = 0) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  for (const stopOne of stops) {
    try {
      await stopOne();
    } catch (error) {
      log.error({ err: error }, 'error during shutdown');
    }
  }
  process.exit(exitCode);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

main().catch(async (error: unknown) => {
  log.fatal({ err: error }, 'failed to start');
  await stop('startup failure', 1);
});

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** A URL of a server listening on every interface (0.0.0.0, ::), as this machine reaches it: on loopback. */
function reachableFromHere(url: string): string {
  return url.replace(/\/\/(0\.0\.0\.0|\[::\]|::):/, '//127.0.0.1:');
}
