import type { FastifyInstance } from 'fastify';
import { isApiEndpoint, type ApiEndpoint } from './endpoints.js';

export interface RequestLogEntry {
  method: string;
  path: string;
  endpoint: ApiEndpoint;
  status: number;
  at: string;
}

// Enough for any test or benchmark run to inspect, without growing without bound in a long-lived demo.
const maxEntries = 100_000;

export class RequestLog {
  #entries: RequestLogEntry[] = [];

  record(entry: RequestLogEntry): void {
    this.#entries.push(entry);
    if (this.#entries.length > maxEntries) this.#entries.splice(0, this.#entries.length - maxEntries);
  }

  entries(): readonly RequestLogEntry[] {
    return [...this.#entries];
  }

  clear(): void {
    this.#entries = [];
  }
}

export function registerRequestLogHook(app: FastifyInstance, log: RequestLog, now: () => number): void {
  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.config.endpoint;
    if (!isApiEndpoint(endpoint)) return;
    log.record({
      method: request.method,
      // The query string is dropped: nothing that could hold a secret is recorded.
      path: request.url.split('?')[0] ?? request.url,
      endpoint,
      status: reply.statusCode,
      at: new Date(now()).toISOString(),
    });
  });
}
