/**
 * The service's metrics, all on the Temporal Runtime's metric meter: one Prometheus endpoint per process
 * (METRICS_BIND_ADDRESS, `GET /metrics`) serves the SDK's worker metrics (`temporal_…`) and these. Workflows count
 * through the workflow meter (src/workflows/metrics.ts), Cronofy calls through the activity's meter, the callback
 * server through the Runtime's meter it is given. Labels never carry tokens, codes, state or query strings.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { noopMetricMeter, type MetricMeter } from '@temporalio/common';
import type { RuntimeOptions } from '@temporalio/worker';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CronofyCall } from '../cronofy/client.js';

// The workflows' downgrade_started and downgrade_finished are in src/workflows/metrics.ts.

export const CALLBACKS = 'downgrade_callbacks';
export const CRONOFY_REQUESTS = 'downgrade_cronofy_requests';
export const CRONOFY_REQUEST_LATENCY = 'downgrade_cronofy_request_latency';
export const CRONOFY_RATE_LIMITED = 'downgrade_cronofy_rate_limited';
export const CRONOFY_RATE_LIMIT_WAIT_SECONDS = 'downgrade_cronofy_rate_limit_wait_seconds';

/** Runtime.install's telemetry: the Prometheus exporter on `bindAddress`, or no metrics without one. */
export function runtimeTelemetryOptions(bindAddress: string | undefined): RuntimeOptions['telemetryOptions'] {
  return bindAddress ? { metrics: { prometheus: { bindAddress } } } : undefined;
}

/**
 * The CronofyClient's `onCall` hook: counts each call by endpoint and status, its latency, and 429s with the
 * Retry-After they asked for (the activity's next retry waits exactly that long). Inside an activity the
 * activity's meter adds `activityType`, `namespace` and `taskQueue`; elsewhere `fallback` is used.
 */
export function cronofyCallMetrics(fallback: MetricMeter = noopMetricMeter): (call: CronofyCall) => void {
  return (call) => {
    const meter = asyncLocalStorage.getStore()?.metricMeter ?? fallback;
    const tags = { endpoint: call.endpoint };
    meter
      .createCounter(CRONOFY_REQUESTS, undefined, 'HTTP calls to Cronofy, by endpoint and status')
      .add(1, { ...tags, status: call.status === undefined ? 'unreachable' : String(call.status) });
    meter
      .createHistogram(CRONOFY_REQUEST_LATENCY, 'float', 'ms', 'Latency of HTTP calls to Cronofy')
      .record(call.durationMs, tags);
    if (call.status === 429) {
      meter.createCounter(CRONOFY_RATE_LIMITED, undefined, '429 answers from Cronofy').add(1, tags);
      if (call.retryAfterMs !== undefined) {
        meter
          .createCounter(CRONOFY_RATE_LIMIT_WAIT_SECONDS, 's', 'Seconds of Retry-After waited after a 429')
          .add(Math.ceil(call.retryAfterMs / 1000), tags);
      }
    }
  };
}

/** Why a callback got its answer; the status alone does not tell a forged state from a malformed request. */
export type CallbackResult =
  | 'delivered'
  | 'duplicate'
  | 'invalid_request'
  | 'malformed'
  | 'forged'
  | 'wrong_purpose'
  | 'expired'
  | 'replay'
  | 'not_running'
  | 'unavailable'
  | 'error';

const callbackResults = new WeakMap<FastifyRequest, CallbackResult>();

/** Handlers name the result where the status is ambiguous; otherwise it follows from the status. */
export function markCallbackResult(request: FastifyRequest, result: CallbackResult): void {
  callbackResults.set(request, result);
}

function resultFromStatus(status: number): CallbackResult {
  if (status === 200) return 'delivered';
  if (status === 409) return 'replay';
  if (status === 503) return 'unavailable';
  if (status >= 400 && status < 500) return 'invalid_request';
  return 'error';
}

/** Counts every answer of the callback routes (`routes`: route path → endpoint label) by status and result. */
export function registerCallbackMetrics(
  app: FastifyInstance,
  meter: MetricMeter,
  routes: Record<string, string>,
): void {
  const callbacks = meter.createCounter(
    CALLBACKS,
    undefined,
    'Callbacks answered, by endpoint, status and result',
  );
  app.addHook('onResponse', async (request, reply) => {
    const endpoint = routes[request.routeOptions.url ?? ''];
    if (endpoint === undefined) return;
    callbacks.add(1, {
      endpoint,
      status: String(reply.statusCode),
      result: callbackResults.get(request) ?? resultFromStatus(reply.statusCode),
    });
  });
}
