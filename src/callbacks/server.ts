import Fastify, { type FastifyInstance } from 'fastify';
import { loggerOptions } from '../logger.js';
import { getReauthorizationRedirect, type CallbackDeps } from './getReauthorizationRedirect.js';

export interface CallbackServerOptions {
  host: string;
  port: number;
  logLevel?: string;
}

export async function startCallbackServer(
  deps: CallbackDeps,
  options: CallbackServerOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: loggerOptions(options.logLevel ?? 'info'), bodyLimit: 64 * 1024 });
  getReauthorizationRedirect(app, deps);
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { app, url: `http://${options.host}:${port}` };
}
