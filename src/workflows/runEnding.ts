import { ActivityFailure, CancellationScope, isCancellation } from '@temporalio/workflow';

/**
 * How a run ends when an error escapes its procedure, the same for every workflow: a cancellation runs `cancelled`
 * (which cannot itself be cancelled) and is thrown again, so that Temporal shows the run cancelled; an activity
 * that failed for good ends the run `failed`, naming the activity; anything else is thrown again.
 */
export async function endOnError<T>(
  error: unknown,
  ending: { cancelled(): void | Promise<void>; failed(reason: string): T | Promise<T> },
): Promise<T> {
  if (isCancellation(error)) {
    await CancellationScope.nonCancellable(async () => ending.cancelled());
    throw error;
  }
  if (error instanceof ActivityFailure) {
    return ending.failed(`${error.activityType}: ${error.cause?.message ?? error.message}`);
  }
  throw error;
}

/** A run that moves many users (a domain, a campaign), as it ends on an error. */
export interface UsersRun<S> {
  finish(phase: 'cancelled' | 'failed', reason: string): S;
  cancelUsersInFlight(): Promise<void>;
}

/** `endOnError` for a run that moves many users: cancelling it cancels its users in flight too. */
export function endUsersRunOnError<S>(error: unknown, run: UsersRun<S>): Promise<S> {
  return endOnError(error, {
    cancelled: () => {
      run.finish('cancelled', 'cancelled by request');
      return run.cancelUsersInFlight();
    },
    failed: (reason) => run.finish('failed', reason),
  });
}
