/**
 * Errors from Cronofy, named after what the caller should do. `retryable` follows Cronofy's documented status
 * table: 429 and 5xx may succeed later, every other 4xx will not succeed without a change on our side.
 */
export class CronofyError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errorKey: string | undefined,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    // Named after its class: Temporal carries the name as the failure's type, which retry policies match.
    this.name = new.target.name;
  }
}

/** 429: over Cronofy's rate limit; back off (honouring Retry-After when given) and try again. */
export class CronofyRateLimitedError extends CronofyError {}

/** 5xx, a timeout or a broken connection: transient, retry with backoff. */
export class CronofyUnavailableError extends CronofyError {}

/** 401: the access token is not (or no longer) recognised; refresh it once, then retry. */
export class CronofyUnauthorizedError extends CronofyError {}

/**
 * 401 from `/oauth/token` or `/oauth/token/revoke`: these take no bearer token, so Cronofy refused the client's
 * own credentials (client_id, client_secret). Nothing to refresh; retrying cannot help until they are fixed.
 */
export class CronofyClientCredentialsError extends CronofyError {}

/** 400 on the token endpoints: `invalid_grant` (used, unknown or mismatched code), `invalid_client`, ... */
export class CronofyGrantError extends CronofyError {}

/** 402, 403, 404, 422, 423 and any other 4xx: retrying the same request cannot help. */
export class CronofyRequestRejectedError extends CronofyError {}

/** A 2xx whose body does not have the documented shape. */
export class CronofyResponseError extends CronofyError {}

export const NON_RETRYABLE_CRONOFY_ERRORS = [
  'CronofyClientCredentialsError',
  'CronofyGrantError',
  'CronofyRequestRejectedError',
  'CronofyResponseError',
] as const;
