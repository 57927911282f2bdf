import { ApplicationFailure, getClient } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { CapturedPeople } from '../store/capturedPeople.js';

/** A batch's page of a capture, which must hold the whole batch: a shorter one means the capture is not the one the run counted. */
export function wholeBatch<T>(rows: T[], batch: { captureId: string; from: number; size: number }): T[] {
  if (rows.length !== batch.size) {
    throw ApplicationFailure.nonRetryable(
      `capture ${batch.captureId} has ${rows.length} users at ${batch.from}, not ${batch.size}`,
    );
  }
  return rows;
}

/**
 * The activity that cancels the workflows of a run's users started (positions before `before`) that have no outcome
 * yet, through the worker's own Temporal client; `workflowIdOf` names a user's workflow by position.
 */
export function cancelUnfinished<R extends { captureId: string; before: number }>(
  people: CapturedPeople,
  workflowIdOf: (request: R, position: number) => string,
): (request: R) => Promise<void> {
  return async (request) => {
    const client = getClient();
    const positions = await people.unfinishedPositions(request.captureId, request.before);
    await Promise.all(
      positions.map((position) =>
        client.workflow
          .getHandle(workflowIdOf(request, position))
          .cancel()
          .catch((error: unknown) => {
            // Finished since the query, or never started (the batch's activity was cut short).
            if (!(error instanceof WorkflowNotFoundError)) throw error;
          }),
      ),
    );
  };
}
