import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isApiEndpoint } from './endpoints.js';

export const rateLimitSchema = z.object({
  perSecond: z.number().int().positive(),
  perMinute: z.number().int().positive(),
});

export type RateLimit = z.infer<typeof rateLimitSchema>;

/** Cronofy's documented limits per application. */
export const cronofyRateLimit: RateLimit = { perSecond: 50, perMinute: 500 };

/** Sliding one-second and one-minute windows per key; rejected requests do not count against the key. */
export class SlidingWindowRateLimiter {
  #acceptedAt = new Map<string, number[]>();

  constructor(
    public limit: RateLimit,
    private readonly now: () => number,
  ) {}

  tryAcquire(key: string): boolean {
    const now = this.now();
    const lastMinute = (this.#acceptedAt.get(key) ?? []).filter((at) => now - at < 60_000);
    const lastSecond = lastMinute.filter((at) => now - at < 1_000);
    const allowed = lastSecond.length < this.limit.perSecond && lastMinute.length < this.limit.perMinute;
    if (allowed) lastMinute.push(now);
    this.#acceptedAt.set(key, lastMinute);
    return allowed;
  }

  clear(): void {
    this.#acceptedAt.clear();
  }
}

/** Runs after the body is parsed, because that is where token endpoints carry the client_id. */
export function registerRateLimitHook(
  app: FastifyInstance,
  limiter: SlidingWindowRateLimiter,
  clientIdOf: (request: FastifyRequest) => string | undefined,
): void {
  app.addHook('preHandler', async (request, reply) => {
    if (!isApiEndpoint(request.routeOptions.config.endpoint)) return;
    const clientId = clientIdOf(request);
    if (clientId === undefined || limiter.tryAcquire(clientId)) return;
    return reply.code(429).send();
  });
}
