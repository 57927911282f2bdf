import { z } from 'zod';
import {
  DowngradeNotFoundError,
  DowngradeRefusedError,
  DowngradeUsageError,
  PreviewNotFoundError,
} from '../client/errors.js';

/**
 * Every error the API answers with, by its stable `code`: the HTTP status and the title. Clients branch on the code;
 * the detail is for people.
 */
export const PROBLEMS = {
  invalid_request: { status: 400, title: 'The request is not valid' },
  unauthenticated: { status: 401, title: 'A valid API key is required' },
  insufficient_scope: { status: 403, title: 'The API key lacks the scope this needs' },
  not_found: { status: 404, title: 'No such resource' },
  downgrade_not_found: { status: 404, title: 'No such downgrade' },
  downgrade_refused: { status: 409, title: 'The downgrade cannot do this in its current state' },
  preview_not_found: { status: 404, title: 'No such preview' },
  upload_not_found: { status: 404, title: 'No such upload' },
  webhook_not_configured: { status: 409, title: 'No webhook endpoint is configured (APP_WEBHOOK_URL)' },
  idempotency_in_progress: {
    status: 409,
    title: 'A request with this Idempotency-Key is still being answered',
  },
  idempotency_key_reused: { status: 422, title: 'This Idempotency-Key was used for another request' },
  rate_limited: {
    status: 429,
    title: "The API key has used its requests for now: retry after Retry-After's seconds",
  },
  internal: { status: 500, title: 'The service failed to answer' },
  unavailable: { status: 503, title: 'A service this needs is unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;
export type ProblemCode = keyof typeof PROBLEMS;

/** An answer as `application/problem+json` (RFC 9457), with the error's code. */
export const ProblemDocument = z
  .object({
    type: z.string().describe('A URI reference naming the kind of error: `#<code>` in this API'),
    title: z.string(),
    status: z.int().min(400).max(599),
    code: z.enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]]),
    detail: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('For invalid_request: each field that is not valid, and why'),
  })
  .meta({ id: 'Problem' });
export type ProblemDocument = z.infer<typeof ProblemDocument>;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An error answer, as a route's response schema: a problem document in its own media type. */
export const PROBLEM = { content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemDocument } } };

/** The answers every route with a key may give besides its own: an invalid request, no key, no scope, no budget left. */
export const REFUSALS = { 400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 429: PROBLEM };

/** A POST's refusals: those, and its Idempotency-Key's (409 while the first is answered, 422 reused elsewhere). */
export const POST_REFUSALS = { ...REFUSALS, 409: PROBLEM, 422: PROBLEM };

/** Thrown by a handler to answer with a problem. */
export class Problem extends Error {
  override name = 'Problem';
  readonly errors?: Array<{ path: string; message: string }>;
  /** Sent as Retry-After. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: ProblemCode,
    detail?: string,
    more: { errors?: Problem['errors']; retryAfterSeconds?: number } = {},
  ) {
    super(detail ?? PROBLEMS[code].title);
    this.errors = more.errors;
    this.retryAfterSeconds = more.retryAfterSeconds;
  }

  get status(): number {
    return PROBLEMS[this.code].status;
  }

  toDocument(): ProblemDocument {
    const { title, status } = PROBLEMS[this.code];
    return {
      type: `#${this.code}`,
      title,
      status,
      code: this.code,
      detail: this.message,
      errors: this.errors,
    };
  }
}

/** Runs a call of the service's clients, their errors answered as the API's problems. */
export async function asProblem<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DowngradeNotFoundError) throw new Problem('downgrade_not_found', error.message);
    if (error instanceof PreviewNotFoundError) throw new Problem('preview_not_found', error.message);
    if (error instanceof DowngradeRefusedError) throw new Problem('downgrade_refused', error.message);
    if (error instanceof DowngradeUsageError) throw new Problem('invalid_request', error.message);
    throw error;
  }
}
