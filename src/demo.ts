/**
 * `npm run demo` (with `npm start` running): creates a Read/Write user on the simulator, starts their downgrade
 * through the typed client, prints the consent link to open in a browser, and waits for the outcome.
 * `npm run demo -- --enterprise [users]` does the same for an Enterprise Connect domain: the link is the
 * administrator's, and the outcome is the count of users moved. If `npm start` is stopped or restarted while the
 * demo waits, the demo says so and waits for it to come back (throughRestarts): the downgrade goes on regardless.
 */
import { payloadEncryption } from './codec/payloadEncryption.js';
import { DefaultLogger, Runtime, TransportError } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { EnterpriseRuns, IndividualRuns } from './client.js';
import { downgradeDefaults, loadConfig } from './config.js';
import { setupTracing } from './observability/tracing.js';
import { connectTemporal, SIMULATOR_CLIENT } from './services.js';

const config = loadConfig();
if (!config.useSimulator) {
  console.error('The demo creates its users on the Cronofy simulator; unset CRONOFY_CLIENT_ID to use it.');
  process.exit(1);
}
const simulatorUrl = `http://127.0.0.1:${config.SIMULATOR_PORT}`;
const enterpriseDemo = process.argv.includes('--enterprise');
const stamp = Date.now();

/** gRPC's UNAVAILABLE and DEADLINE_EXCEEDED: Temporal is not there (stopped, or starting again). */
const UNREACHABLE_CODES = new Set([14, 4]);

/** Whether `error`, or an error it was caused by, says that Temporal could not be reached. */
function temporalUnreachable(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (UNREACHABLE_CODES.has((cause as { code?: unknown }).code as number)) return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the downgrade's trace starts at this client's StartWorkflow span.
const tracing = setupTracing({
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  serviceName: config.OTEL_SERVICE_NAME,
});
// The client's native connection needs the SDK's Runtime; without signal handlers of its own, Ctrl-C ends the demo.
// Its native client would print a warning for each retry while Temporal is away: the demo says that itself.
Runtime.install({
  logger: new DefaultLogger('WARN'),
  shutdownSignals: [],
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
});
const temporal = await connectTemporal(config, payloadEncryption(config).dataConverter, {
  tracing: tracing.enabled,
}).catch((error: unknown) => {
  // The native connection's first connect fails with a TransportError; later calls with a gRPC status.
  if (!(error instanceof TransportError) && !temporalUnreachable(error)) throw error;
  console.error(
    `Temporal does not answer at ${config.TEMPORAL_ADDRESS}: start the service first (npm start).`,
  );
  process.exit(1);
});
// The demo runs beside the service, whose embedded database admits no second process: Temporal alone.
const clientOptions = {
  temporal: temporal.client,
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  defaults: downgradeDefaults(config),
};
const individual = new IndividualRuns(clientOptions);
const enterprise = new EnterpriseRuns({ ...clientOptions, temporalUiUrl: config.temporalUiUrl });
const uiLink = (workflowId: string) =>
  `http://127.0.0.1:${config.TEMPORAL_UI_PORT}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/${workflowId}`;

/**
 * `read` (a status, a result) through `npm start` being stopped or restarted meanwhile. The downgrade is kept by
 * Temporal and goes on without the demo: one line says the service went away, Temporal is asked again with a
 * bounded backoff (1 s doubling to 10 s) until it answers, one line says it is back, and `read` is made again.
 * Any other error is the demo's end, as before.
 */
async function throughRestarts<T>(read: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (!temporalUnreachable(error)) throw error;
    }
    console.log(
      `\nThe service went away (Temporal does not answer at ${config.TEMPORAL_ADDRESS}); the downgrade goes on ` +
        'and the demo waits for the service to come back (Ctrl-C stops waiting)...',
    );
    for (let delayMs = 1_000; ; delayMs = Math.min(delayMs * 2, 10_000)) {
      await sleep(delayMs);
      try {
        await temporal.connection.healthService.check({});
        break;
      } catch (error) {
        if (!temporalUnreachable(error)) throw error;
      }
    }
    console.log('The service is back; waiting for the downgrade to end...');
  }
}

async function waitForLink(
  read: () => Promise<{ authorizationUrl?: string; state?: string; phase?: string }>,
) {
  for (;;) {
    const status = await throughRestarts(read);
    if (status.authorizationUrl) return status.authorizationUrl;
    await sleep(300);
  }
}

if (enterpriseDemo) {
  const count = Number(process.argv[process.argv.indexOf('--enterprise') + 1]) || 25;
  const domain = `demo-${stamp}.example.org`;
  const emails = Array.from({ length: count }, (_, i) => `person${i}@${domain}`);
  const serviceAccount = z.object({ service_account_id: z.string() }).parse(
    await got
      .post(`${simulatorUrl}/_sim/enterprise/domains`, {
        json: { domain, client_id: SIMULATOR_CLIENT.clientId, users: emails },
      })
      .json(),
  );
  const { workflowId } = await enterprise.startInline({
    domain,
    users: [emails],
    serviceAccountSub: serviceAccount.service_account_id,
    userDeadlineMs: 60_000,
    window: 100,
  });
  console.log(`Started ${workflowId}: ${count} users of ${domain}; it revokes the service account first.`);
  const link = await waitForLink(() => enterprise.get(domain));
  console.log(`\nAs the domain's administrator, open this link and choose Free/Busy:\n\n  ${link}\n`);
  console.log(`Follow the run in the Temporal UI: ${uiLink(workflowId)}`);
  const result = await throughRestarts(() => enterprise.waitForResult(domain));
  console.log(
    `\nDowngrade ended: ${result.phase}, users: ${JSON.stringify(result.counts)}, runs: ${result.runs}`,
  );
} else {
  const email = process.argv[2] ?? `demo-${stamp}@example.com`;
  const account = z
    .object({ sub: z.string() })
    .parse(
      await got
        .post(`${simulatorUrl}/_sim/accounts`, { json: { email, client_id: SIMULATOR_CLIENT.clientId } })
        .json(),
    );
  // The link comes back with the start: the workflow revoked the Read/Write connection and made it. The service's
  // own link leads to the current consent request, however late it is opened.
  const started = await individual.startWithLink({ sub: account.sub, userId: email });
  const { workflowId } = started;
  const link = started.link ?? started.authorizationUrl;
  console.log(`Started ${workflowId} for ${email} (${account.sub}); its Read/Write connection is revoked.`);
  console.log(`\nOpen this link and choose Free/Busy:\n\n  ${link}\n`);
  console.log(`Follow the run in the Temporal UI: ${uiLink(workflowId)}`);
  console.log('Waiting for the person to answer (Ctrl-C stops waiting; the downgrade goes on)...');
  const result = await throughRestarts(() => individual.waitForResult(workflowId));
  console.log(
    `\nDowngrade ended: ${result.state}${result.reason ? ` (${result.reason})` : ''}${result.providerName ? `, provider ${result.providerName}` : ''}`,
  );
}
await temporal.close();
await tracing.shutdown();
