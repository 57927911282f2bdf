import { ApplicationFailure } from '@temporalio/activity';
import { CronofyError } from '../cronofy/errors.js';

/** Maps Cronofy's typed errors onto Temporal's retry policy: retryable or not, and how long to wait. */
export async function callCronofy<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof CronofyError)) throw error;
    throw ApplicationFailure.create({
      type: error.name,
      message: error.message,
      nonRetryable: !error.retryable,
      nextRetryDelay: error.retryAfterMs,
      details: [{ status: error.status, errorKey: error.errorKey }],
    });
  }
}
