import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { IdempotentRequests } from '../store/idempotency.js';
import { Problem, PROBLEM_CONTENT_TYPE } from './problems.js';

/** How long a duplicate waits for the first request with its key to be answered before it is told to retry. */
const DUPLICATE_WAIT_MS = 15_000;
const DUPLICATE_POLL_MS = 50;

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** The header every POST takes, as its schema documents it: other headers pass as they are. */
export const IDEMPOTENT_HEADERS = z.looseObject({
  [IDEMPOTENCY_KEY_HEADER]: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('Answer this request once: a retry with the same key and request gets the first answer again'),
});

/** What a POST handler answers: its status and body, which a replay answers again. */
export interface Answer {
  status: number;
  body: unknown;
}

/**
 * Runs a POST once per API key and `Idempotency-Key`: the first request runs `handle`; a later one with the same
 * request answers the first answer again (header `Idempotent-Replayed: true`), one with another request is refused,
 * and one that arrives while the first is still running waits for its answer. A request that fails on the service's
 * side releases the key, so that a retry runs afresh. Without the header, `handle` runs as it is.
 */
export async function answerOnce(
  requests: IdempotentRequests,
  request: FastifyRequest,
  reply: FastifyReply,
  handle: () => Promise<Answer>,
): Promise<void> {
  // Every POST's schema validates the header (IDEMPOTENT_HEADERS): here it is one string of 1 to 255 characters.
  const idempotencyKey = request.headers[IDEMPOTENCY_KEY_HEADER] as string | undefined;
  if (idempotencyKey === undefined) return send(reply, await handle());
  const keyId = request.apiKey!.id;
  const requestHash = createHash('sha256')
    .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
  const deadline = Date.now() + DUPLICATE_WAIT_MS;
  for (;;) {
    const turn = await requests.claim(keyId, idempotencyKey, requestHash);
    if (turn.kind === 'other_request') {
      throw new Problem('idempotency_key_reused', 'this Idempotency-Key was first used with another request');
    }
    if (turn.kind === 'replay') {
      reply.header('idempotent-replayed', 'true');
      await reply
        .code(turn.status)
        .type(turn.status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json; charset=utf-8')
        .serializer((body) => body as string)
        .send(turn.response);
      return;
    }
    if (turn.kind === 'first') {
      let answer: Answer;
      try {
        answer = await handle();
      } catch (error) {
        // A refusal is an answer like any other; a failure of the service's own is not kept.
        if (error instanceof Problem && error.status < 500) {
          await requests.complete(keyId, idempotencyKey, error.status, JSON.stringify(error.toDocument()));
        } else {
          await requests.release(keyId, idempotencyKey);
        }
        throw error;
      }
      await requests.complete(keyId, idempotencyKey, answer.status, JSON.stringify(answer.body));
      return send(reply, answer);
    }
    if (Date.now() > deadline) {
      throw new Problem(
        'idempotency_in_progress',
        'retry once the first request with this key has been answered',
      );
    }
    await sleep(DUPLICATE_POLL_MS);
  }
}

async function send(reply: FastifyReply, { status, body }: Answer): Promise<void> {
  await reply.code(status).send(body);
}
