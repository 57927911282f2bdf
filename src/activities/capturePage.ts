import { ApplicationFailure } from '@temporalio/activity';

/** A batch's page of a capture, which must hold the whole batch: a shorter one means the capture is not the one the run counted. */
export function wholeBatch<T>(rows: T[], batch: { captureId: string; from: number; size: number }): T[] {
  if (rows.length !== batch.size) {
    throw ApplicationFailure.nonRetryable(
      `capture ${batch.captureId} has ${rows.length} users at ${batch.from}, not ${batch.size}`,
    );
  }
  return rows;
}
