/**
 * Metrics and traces of a real downgrade on the test stack: the Runtime's Prometheus endpoint is scraped over HTTP,
 * and spans are exported by the service's own tracing setup (OTLP/HTTP, OTEL_EXPORTER_OTLP_ENDPOINT) to a receiver
 * on a local socket. Runtime.install and the tracer provider are once per process: this file is its own process.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import got from 'got';
import { z } from 'zod';
import { StateSigner } from '../src/contracts/stateToken.js';
import { NO_RUN } from '../harness/stack.js';
import {
  CALLBACKS,
  CRONOFY_RATE_LIMIT_WAIT_SECONDS,
  CRONOFY_RATE_LIMITED,
  CRONOFY_REQUEST_LATENCY,
  CRONOFY_REQUESTS,
} from '../src/observability/metrics.js';
import { setupTracing, type Tracing } from '../src/observability/tracing.js';
import { enterpriseDowngradeId, enterpriseUserDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import { DOWNGRADE_FINISHED, DOWNGRADE_STARTED } from '../src/workflows/metrics.js';
import {
  approveAsAdministrator,
  CLIENT,
  createDomain,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  simulatorGet,
  startStack,
  STATE_SECRET,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { freePort } from '../harness/ports.js';
import { waitUntil } from '../harness/waitUntil.js';
import {
  assertEveryHistoryHoldsNoSecrets,
  IssuedSecrets,
  recordHistories,
  replayHistories,
} from '../harness/histories.js';

let stack: Stack;
let worker: RunningWorker;
let tracing: Tracing;
let otlp: OtlpReceiver;
let metricsUrl: string;

before(async () => {
  otlp = await startOtlpReceiver();
  // The standard variable, read by the OTLP exporter itself (it posts to <endpoint>/v1/traces).
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.url;
  tracing = setupTracing({ otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${metricsAddress}/metrics`;
  stack = await startStack({ metricsBindAddress: metricsAddress, tracing });
  worker = await stack.startWorker();
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
  await tracing?.shutdown();
  await new Promise((resolve) => otlp?.server.close(resolve));
});

let workflowId: string;
const callbackStates: string[] = [];

test('a completed downgrade, a 429, a replayed and a forged callback move the counters', async () => {
  // Cronofy rate-limits the code exchange once: the activity waits the Retry-After, then succeeds.
  await got.post(`${stack.simulator.url}/_sim/faults`, {
    json: [{ endpoint: 'token', status: 429, retryAfterSeconds: 1, count: 1 }],
  });
  const user = await createReadWriteUser(stack, 'observed@example.com');
  ({ workflowId } = await stack.individual.start({
    sub: user.sub,
    refreshToken: user.refresh_token,
  }));
  const { authorizationUrl } = await waitForState(stack, workflowId, (s) => s === 'awaiting_reauthorization');
  const location = await decideOnConsentPage(authorizationUrl!, 'free_busy_google', { email: user.email });
  callbackStates.push(location.searchParams.get('state')!);
  assert.equal((await followRedirect(location)).status, 303);
  assert.equal((await followRedirect(location)).status, 409, 'the same link again is a replay');

  const forged = await new StateSigner('not-the-service-secret-0123456789abcdef').sign(
    {
      ...NO_RUN,
      workflowId,
      purpose: 'individual_reauthorization',
      prompt: 1,
      nonce: StateSigner.newNonce(),
    },
    new Date(Date.now() + 60_000),
  );
  callbackStates.push(forged);
  const forgedRedirect = await followRedirect(`${stack.callbackUrl}/oauth/callback?code=abc&state=${forged}`);
  assert.equal(forgedRedirect.status, 400);
  assert.equal((await followRedirect(`${stack.callbackUrl}/oauth/callback?code=abc`)).status, 400);
  const forgedPost = await got.post(`${stack.callbackUrl}/cronofy/service-account-callback`, {
    searchParams: { state: forged },
    json: { authorization: { error: 'access_denied' } },
    throwHttpErrors: false,
  });
  assert.equal(forgedPost.statusCode, 400);

  assert.equal((await stack.individual.waitForResult(workflowId)).state, 'completed');

  const individual = { kind: 'individual', workflowType: 'individualDowngrade' };
  const oauth = { endpoint: 'oauth_callback' };
  const serviceAccountForged = { endpoint: 'service_account_callback', status: '400', result: 'forged' };
  // Callbacks are counted once their answer has gone out (onResponse), a moment after the client has it.
  const expectedCallbacks = [
    { ...oauth, status: '303', result: 'delivered' },
    { ...oauth, status: '409', result: 'replay' },
    { ...oauth, status: '400', result: 'forged' },
    { ...oauth, status: '400', result: 'invalid_request' },
    serviceAccountForged,
  ];
  const metrics = await scrapeUntil(
    (m) =>
      value(m, DOWNGRADE_FINISHED, individual) > 0 &&
      expectedCallbacks.every((labels) => value(m, CALLBACKS, labels) > 0),
  );
  assert.equal(value(metrics, DOWNGRADE_STARTED, individual), 1);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, { ...individual, outcome: 'completed' }), 1);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, individual), 1, 'no other outcome');

  assert.equal(value(metrics, CALLBACKS, { ...oauth, status: '303', result: 'delivered' }), 1);
  assert.equal(value(metrics, CALLBACKS, { ...oauth, status: '409', result: 'replay' }), 1);
  assert.equal(value(metrics, CALLBACKS, { ...oauth, status: '400', result: 'forged' }), 1);
  assert.equal(value(metrics, CALLBACKS, { ...oauth, status: '400', result: 'invalid_request' }), 1);
  assert.equal(value(metrics, CALLBACKS, serviceAccountForged), 1);

  // Cronofy calls by endpoint and status, labelled with the activity that made them.
  assert.equal(
    value(metrics, CRONOFY_REQUESTS, {
      endpoint: 'revoke',
      status: '200',
      activityType: 'revokeAuthorization',
    }),
    1,
  );
  const exchange = { endpoint: 'token', activityType: 'exchangeAuthorizationCode' };
  assert.equal(value(metrics, CRONOFY_REQUESTS, { ...exchange, status: '429' }), 1);
  assert.equal(value(metrics, CRONOFY_REQUESTS, { ...exchange, status: '200' }), 1);
  assert.equal(value(metrics, `${CRONOFY_REQUEST_LATENCY}_count`, exchange), 2);
  assert.equal(value(metrics, CRONOFY_RATE_LIMITED, exchange), 1);
  assert.equal(value(metrics, CRONOFY_RATE_LIMIT_WAIT_SECONDS, exchange), 1);

  // The SDK's own worker metrics come from the same endpoint.
  assert.ok(value(metrics, 'temporal_workflow_completed', { workflow_type: 'individualDowngrade' }) >= 1);
  assert.equal(
    value(metrics, 'temporal_activity_execution_failed', { activity_type: 'exchangeAuthorizationCode' }),
    1,
    'the rate-limited attempt failed and was retried',
  );

  await assertNoSecrets(metrics.text, 'the metrics');
});

test('one trace goes from StartWorkflow through the workflow and its activities to each Cronofy call', async () => {
  assert.ok(workflowId, 'the first test ran a downgrade');
  const started = await waitForSpans(() =>
    otlp.spans.find(
      (span) =>
        span.name === 'StartWorkflow:individualDowngrade' &&
        span.attributes.temporalWorkflowId === workflowId,
    ),
  );
  const trace = await waitForSpans(() => {
    const spans = otlp.spans.filter((span) => span.traceId === started.traceId);
    return spans.filter((span) => span.name === 'Cronofy POST token').length >= 2 &&
      spans.some((span) => span.name === 'RunWorkflow:individualDowngrade')
      ? spans
      : undefined;
  });
  const one = (name: string) => {
    const found = trace.filter((span) => span.name === name);
    assert.ok(found.length > 0, `${name} in the trace; it has ${trace.map((span) => span.name).join(', ')}`);
    return found;
  };
  const [runWorkflow] = one('RunWorkflow:individualDowngrade');
  const [startRevoke] = one('StartActivity:revokeAuthorization');
  const [runRevoke] = one('RunActivity:revokeAuthorization');
  const [revokeCall] = one('Cronofy POST revoke');
  assert.equal(runWorkflow!.parentSpanId, started.spanId);
  assert.equal(startRevoke!.parentSpanId, runWorkflow!.spanId);
  assert.equal(runRevoke!.parentSpanId, startRevoke!.spanId);
  assert.equal(revokeCall!.parentSpanId, runRevoke!.spanId);
  assert.equal(revokeCall!.attributes['cronofy.endpoint'], 'revoke');
  assert.equal(revokeCall!.attributes['http.response.status_code'], 200);
  assert.equal(revokeCall!.attributes['url.path'], '/oauth/token/revoke');

  // The exchange's two attempts: the 429 (an error span), then the 200, each inside its own RunActivity.
  const exchanges = one('RunActivity:exchangeAuthorizationCode');
  const tokenCalls = one('Cronofy POST token');
  assert.deepEqual(tokenCalls.map((span) => span.attributes['http.response.status_code']).sort(), [200, 429]);
  for (const call of tokenCalls) {
    assert.ok(exchanges.some((run) => run.spanId === call.parentSpanId));
  }
  const limited = tokenCalls.find((span) => span.attributes['http.response.status_code'] === 429)!;
  assert.equal(limited.status.code, 2, 'the 429 is an error span');

  await assertNoSecrets(JSON.stringify(otlp.bodies), 'the exported spans');
});

/** Neither a token, a code, a state nor the client secret appears in `text`. */
async function assertNoSecrets(text: string, what: string) {
  const issued = await simulatorGet(stack, '/_sim/issued-secrets', IssuedSecrets);
  const secrets = [
    ...issued.codes,
    ...issued.access_tokens,
    ...issued.refresh_tokens,
    ...callbackStates,
    CLIENT.clientSecret,
    STATE_SECRET,
  ];
  assert.ok(issued.codes.length > 0 && callbackStates.length > 0);
  for (const secret of secrets) assert.equal(text.includes(secret), false, `${what} hold a secret`);
  assert.equal(/[?&](code|state)=/.test(text), false, `${what} hold a query string`);
}

interface Metrics {
  text: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

async function scrape(): Promise<Metrics> {
  const text = await got(metricsUrl).text();
  const samples = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      assert.ok(match, `a Prometheus sample: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1]!, label[2]!]),
      );
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
  return { text, samples };
}

/** The sum over every series of `name` whose labels include `labels`. */
function value(metrics: Metrics, name: string, labels: Record<string, string> = {}): number {
  return metrics.samples
    .filter((sample) => sample.name === name)
    .filter((sample) => Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted))
    .reduce((sum, sample) => sum + sample.value, 0);
}

async function scrapeUntil(ready: (metrics: Metrics) => boolean): Promise<Metrics> {
  return waitUntil(
    'the metrics are ready',
    async () => {
      const metrics = await scrape();
      return ready(metrics) && metrics;
    },
    { intervalMs: 200 },
  );
}

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  status: { code?: number };
  attributes: Record<string, unknown>;
}

interface OtlpReceiver {
  server: Server;
  url: string;
  bodies: unknown[];
  spans: ReceivedSpan[];
}

const AnyValue: z.ZodType<unknown> = z
  .object({
    stringValue: z.string().optional(),
    intValue: z.union([z.string(), z.number()]).optional(),
    doubleValue: z.number().optional(),
    boolValue: z.boolean().optional(),
  })
  .loose()
  .transform((value) =>
    value.intValue !== undefined
      ? Number(value.intValue)
      : (value.stringValue ?? value.doubleValue ?? value.boolValue ?? value),
  );
const ExportRequest = z.object({
  resourceSpans: z.array(
    z.object({
      scopeSpans: z.array(
        z.object({
          spans: z.array(
            z.object({
              traceId: z.string(),
              spanId: z.string(),
              parentSpanId: z.string().optional(),
              name: z.string(),
              status: z.object({ code: z.number().optional() }).loose().default({}),
              attributes: z.array(z.object({ key: z.string(), value: AnyValue })).default([]),
            }),
          ),
        }),
      ),
    }),
  ),
});

/** A collector's OTLP/HTTP JSON endpoint, `POST /v1/traces`, keeping what it receives. */
async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const bodies: unknown[] = [];
  const spans: ReceivedSpan[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      bodies.push(body);
      for (const resource of ExportRequest.parse(body).resourceSpans) {
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              ...span,
              parentSpanId: span.parentSpanId || undefined,
              attributes: Object.fromEntries(span.attributes.map((a) => [a.key, a.value])),
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, spans };
}

/** Flushes the exporter until `find` finds what it looks for. */
async function waitForSpans<T>(find: () => T | undefined): Promise<T> {
  return waitUntil(
    'the expected spans are exported',
    async () => {
      await tracing.forceFlush();
      return find();
    },
    { intervalMs: 200 },
  );
}

test('an Enterprise Connect domain moves the enterprise and per-user counters', async () => {
  const domain = 'observed.example.org';
  const emails = ['ada', 'grace', 'alan', 'edsger'].map((name) => `${name}@${domain}`);
  const oauthDelivered = { endpoint: 'oauth_callback', status: '303', result: 'delivered' };
  const deliveredBefore = value(await scrape(), CALLBACKS, oauthDelivered);
  const serviceAccount = await createDomain(stack, domain, emails);
  await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, {
    json: { byEmail: { [emails[3]!]: { kind: 'error', error: 'unable_to_grant_scope' } } },
  });
  await stack.enterprise.start({
    domain,
    requireApproval: false,
    users: [emails],
    serviceAccountRefreshToken: serviceAccount.refresh_token,
    serviceAccountSub: serviceAccount.service_account_id,
    maxUserRequests: 1,
  });
  await approveAsAdministrator(stack, domain);
  const result = await stack.enterprise.waitForResult(domain);
  assert.deepEqual(result.counts, { completed: 3, failed: 1 });

  const enterprise = { kind: 'enterprise' };
  const user = { kind: 'enterprise_user' };
  const serviceAccountDelivered = {
    endpoint: 'service_account_callback',
    status: '200',
    result: 'delivered',
  };
  // A callback is counted once its answer has gone out (onResponse), which can come after its signal has already
  // let the downgrade finish: wait until every expected count has arrived, then check none went further.
  const metrics = await scrapeUntil(
    (m) =>
      value(m, DOWNGRADE_FINISHED, enterprise) >= 1 &&
      value(m, DOWNGRADE_FINISHED, user) >= 4 &&
      value(m, CALLBACKS, serviceAccountDelivered) >= 4 &&
      value(m, CALLBACKS, oauthDelivered) - deliveredBefore >= 1,
  );
  assert.equal(value(metrics, DOWNGRADE_STARTED, enterprise), 1);
  // Once, though the last child's completion may reach the parent while its closing task is in flight (that task
  // then runs again): the parent counts one task earlier. Only a lost worker or a timed-out task could repeat it.
  assert.equal(value(metrics, DOWNGRADE_FINISHED, { ...enterprise, outcome: 'completed' }), 1);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, enterprise), 1, 'no other outcome');
  assert.equal(value(metrics, DOWNGRADE_STARTED, user), 4);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, { ...user, outcome: 'completed' }), 3);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, { ...user, outcome: 'failed' }), 1);
  assert.equal(value(metrics, DOWNGRADE_FINISHED, user), 4, 'no other outcome');
  // The administrator's redirect, and one service-account callback per user (the refusal included).
  assert.equal(value(metrics, CALLBACKS, oauthDelivered) - deliveredBefore, 1, "the administrator's");
  assert.equal(value(metrics, CALLBACKS, serviceAccountDelivered), 4);
  await assertNoSecrets(metrics.text, 'the metrics');

  // The parent and its users replay against the current code, trace headers and all; with RECORD_HISTORIES set
  // they are written as fixtures for test/replay.test.ts.
  const parentId = enterpriseDowngradeId(domain);
  const { captureId } = await stack.enterprise.get(domain);
  const userIds = emails.map((_, i) => enterpriseUserDowngradeId(parentId, captureId, i));
  await replayHistories(await recordHistories(stack, [parentId, ...userIds]));
});

test('every run stored by the server holds encrypted payloads and no issued secret or e-mail', async () => {
  // The Individual downgrade, the Enterprise parent and its 4 users.
  await assertEveryHistoryHoldsNoSecrets(stack, { atLeast: 6 });
});
