import type { MetricMeter } from '@temporalio/common';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { loggerOptions } from '../logger.js';
import { registerCallbackMetrics } from '../observability/metrics.js';
import type { CallbackDeps } from './delivery.js';
import { getOpenLink } from './getOpenLink.js';
import { getConsentLink } from './getConsentLink.js';
import { getReauthorizationRedirect } from './getReauthorizationRedirect.js';
import { postServiceAccountCallback } from './postServiceAccountCallback.js';
import { REDIRECT_PATH, SERVICE_ACCOUNT_CALLBACK_PATH } from '../contracts/callbackPaths.js';
import { DEFAULT_VERDICT_WAIT_MS, getAnsweredPage } from './getAnsweredPage.js';
import { PAGE_HEADERS } from './resultPage.js';

export interface CallbackServerOptions {
  host: string;
  port: number;
  /** The public base URL Cronofy posts to; user callback URLs are rebuilt on it to exchange their codes. */
  publicBaseUrl?: string;
  logLevel?: string;
  /**
   * Where `downgrade_callbacks` is counted: the Temporal Runtime's meter (its Prometheus endpoint), or any other
   * Temporal MetricMeter. Without one nothing is counted.
   */
  metricMeter?: MetricMeter;
  /** How long the page after consent waits for the verdict on the answer (DEFAULT_VERDICT_WAIT_MS). */
  verdictWaitMs?: number;
}

export async function startCallbackServer(
  deps: CallbackDeps,
  options: CallbackServerOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({
    logger: loggerOptions(options.logLevel ?? 'info'),
    // Each handler logs one line with the outcome (and downgrade_callbacks counts it); fastify's own "incoming
    // request" and "request completed" lines would triple the logging of every callback.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
  });
  let url = '';
  if (options.metricMeter) {
    registerCallbackMetrics(app, options.metricMeter, {
      [REDIRECT_PATH]: 'oauth_callback',
      [SERVICE_ACCOUNT_CALLBACK_PATH]: 'service_account_callback',
    });
  }
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(PAGE_HEADERS);
  });
  getReauthorizationRedirect(app, deps);
  getAnsweredPage(app, deps, options.verdictWaitMs ?? DEFAULT_VERDICT_WAIT_MS);
  getOpenLink(app, deps);
  getConsentLink(app, deps);
  postServiceAccountCallback(app, deps, () => options.publicBaseUrl ?? url);
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  url = `http://${options.host}:${typeof address === 'object' && address ? address.port : options.port}`;
  return { app, url };
}
