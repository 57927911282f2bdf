import Fastify, { type FastifyInstance } from 'fastify';
import { loggerOptions } from '../logger.js';
import type { CallbackDeps } from './deps.js';
import { getReauthorizationRedirect } from './getReauthorizationRedirect.js';
import { postServiceAccountCallback } from './postServiceAccountCallback.js';

export interface CallbackServerOptions {
  host: string;
  port: number;
  /** The public base URL Cronofy posts to; user callback URLs are rebuilt on it to exchange their codes. */
  publicBaseUrl?: string;
  logLevel?: string;
}

export async function startCallbackServer(
  deps: CallbackDeps,
  options: CallbackServerOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: loggerOptions(options.logLevel ?? 'info'), bodyLimit: 64 * 1024 });
  let url = '';
  getReauthorizationRedirect(app, deps);
  postServiceAccountCallback(app, deps, () => options.publicBaseUrl ?? url);
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  url = `http://${options.host}:${typeof address === 'object' && address ? address.port : options.port}`;
  return { app, url };
}
