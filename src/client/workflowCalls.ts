/** The Temporal calls the clients share: find a run, wait for its end, send it an operator's update. */
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure, type QueryDefinition, type UpdateDefinition } from '@temporalio/common';
import { DowngradeNotFoundError, DowngradeRefusedError } from './errors.js';
import type { BreakerThresholds } from '../workflows/enterpriseDefinitions.js';

/** How long a run waits for approval, and when it pauses itself, unless the caller says otherwise. */
export const DEFAULT_APPROVAL_DEADLINE_MS = 7 * 24 * 3_600_000;
export const DEFAULT_BREAKER: BreakerThresholds = { minFailures: 20, failureRatio: 0.4 };

/** The run id of a running workflow with this id, if there is one. */
export async function runningRunId(temporal: Client, workflowId: string): Promise<string | undefined> {
  try {
    const description = await temporal.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING' ? description.runId : undefined;
  } catch (error) {
    if (error instanceof Error && error.name === 'WorkflowNotFoundError') return undefined;
    throw error;
  }
}

/** Runs `use` on the workflow's handle; a workflow that does not exist is a DowngradeNotFoundError. */
export async function withWorkflow<T>(
  temporal: Client,
  workflowId: string,
  use: (handle: WorkflowHandle) => Promise<T>,
): Promise<T> {
  try {
    return await use(temporal.workflow.getHandle(workflowId));
  } catch (error) {
    if (error instanceof Error && error.name === 'WorkflowNotFoundError') {
      throw new DowngradeNotFoundError(`no downgrade with id ${workflowId}`);
    }
    throw error;
  }
}

/** The run's result once it ends; a cancelled run answers its status (state or phase `cancelled`) instead. */
export async function resultOrStatus<S>(handle: WorkflowHandle, status: QueryDefinition<S>): Promise<S> {
  try {
    return (await handle.result()) as S;
  } catch (error) {
    if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
      return handle.query(status);
    }
    throw error;
  }
}

/**
 * Sends an operator's update (approve, reject, pause, resume) and answers the run's status after it. A request the
 * validator refused, and one for a run that has ended (the server answers "not found" for those), are a
 * DowngradeRefusedError with the reason.
 */
export async function sendOperatorUpdate<S extends { phase: string }, A>(
  temporal: Client,
  target: { workflowId: string; subject: string; status: QueryDefinition<S> },
  update: UpdateDefinition<S, [A]>,
  arg: A,
): Promise<S> {
  return withWorkflow(temporal, target.workflowId, async (handle) => {
    try {
      return await handle.executeUpdate(update, { args: [arg] });
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) {
        throw new DowngradeRefusedError(error.cause?.message ?? error.message);
      }
      const ended = await handle.describe().catch(() => undefined);
      if (ended && ended.status.name !== 'RUNNING') {
        const phase = await handle.query(target.status).then(
          (status) => status.phase,
          () => ended.status.name.toLowerCase(),
        );
        throw new DowngradeRefusedError(`${target.subject} has ended (${phase})`);
      }
      throw error;
    }
  });
}
