import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { endpoints, type Endpoint } from './endpoints.js';

export const faultSchema = z
  .object({
    endpoint: z.enum([...endpoints, '*']),
    status: z.number().int().min(400).max(599).optional(),
    retryAfterSeconds: z.number().int().nonnegative().optional(),
    delayMs: z.number().int().nonnegative().max(120_000).optional(),
    /** Each matching request is faulted with this chance (default 1); one that is not goes on to the next fault. */
    probability: z.number().gt(0).max(1).optional(),
    count: z.number().int().positive(),
  })
  .refine((fault) => fault.status !== undefined || fault.delayMs !== undefined, {
    message: 'a fault needs a status, a delayMs, or both',
  });

export type Fault = z.infer<typeof faultSchema>;

/**
 * Faults wait in order; each matching request consumes one count of the first fault that matches it and, for a
 * fault with a probability, draws it.
 */
export class FaultQueue {
  #pending: Fault[] = [];
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  add(faults: readonly Fault[]): void {
    this.#pending.push(...faults.map((fault) => ({ ...fault })));
  }

  clear(): void {
    this.#pending = [];
  }

  list(): readonly Fault[] {
    return this.#pending.map((fault) => ({ ...fault }));
  }

  take(endpoint: Endpoint): Fault | undefined {
    const index = this.#pending.findIndex(
      (fault) =>
        (fault.endpoint === '*' || fault.endpoint === endpoint) &&
        (fault.probability === undefined || this.#random() < fault.probability),
    );
    const fault = this.#pending[index];
    if (!fault) return undefined;
    fault.count -= 1;
    if (fault.count === 0) this.#pending.splice(index, 1);
    return fault;
  }
}

/** Runs before the body is read, so a faulted request never reaches a handler and changes nothing. */
export function registerFaultHook(app: FastifyInstance, faults: FaultQueue): void {
  app.addHook('onRequest', async (request, reply) => {
    const endpoint = request.routeOptions.config.endpoint;
    if (endpoint === undefined) return;
    const fault = faults.take(endpoint);
    if (!fault) return;
    if (fault.delayMs !== undefined) await sleep(fault.delayMs);
    if (fault.status === undefined) return;
    if (fault.retryAfterSeconds !== undefined) reply.header('Retry-After', String(fault.retryAfterSeconds));
    return reply.code(fault.status).send();
  });
}
