import type { Client } from '@temporalio/client';
import type { QueryDefinition, UpdateDefinition } from '@temporalio/common';
import type { OperatorDecision, OperatorUpdates } from '../workflows/operatedRunDefinitions.js';
import { resultOrStatus, runningRunId, sendOperatorUpdate, withWorkflow } from './workflowCalls.js';

/** What tells one kind of operated run from the other: its workflow ids, its status query, its updates. */
export interface OperatedRunKind<S> {
  workflowId(name: string): string;
  /** How messages name a run, e.g. "the downgrade of example.org". */
  subject(name: string): string;
  status: QueryDefinition<S>;
  updates: OperatorUpdates<S>;
}

/**
 * The operators' calls on a run that moves many users (a domain's downgrade, a campaign), by the run's name (its
 * domain, the campaign's name): one implementation for both kinds, through Temporal alone.
 */
export class OperatedRuns<S extends { phase: string }> {
  constructor(
    protected readonly temporal: Client,
    private readonly kind: OperatedRunKind<S>,
  ) {}

  get(name: string): Promise<S> {
    return withWorkflow(this.temporal, this.kind.workflowId(name), (handle) =>
      handle.query(this.kind.status),
    );
  }

  /** Waits until the run ends; a cancelled one resolves with phase `cancelled`. */
  waitForResult(name: string): Promise<S> {
    return withWorkflow(this.temporal, this.kind.workflowId(name), (handle) =>
      resultOrStatus(handle, this.kind.status),
    );
  }

  /** Cancels the run and the users' downgrades it started that are still under way. */
  async cancel(name: string): Promise<void> {
    await withWorkflow(this.temporal, this.kind.workflowId(name), (handle) => handle.cancel());
  }

  /** Lets a run waiting in `awaiting_approval` go ahead; refused unless `previewId` is the one it was started from. */
  approve(name: string, decision: OperatorDecision & { previewId: string }): Promise<S> {
    return this.update(name, this.kind.updates.approve, decision);
  }

  /** Ends a run waiting in `awaiting_approval` as `rejected`, with nothing done at Cronofy. */
  reject(name: string, decision: OperatorDecision): Promise<S> {
    return this.update(name, this.kind.updates.reject, decision);
  }

  /** Answers once the run makes no Cronofy call of its own and starts no user; waiting users keep waiting. */
  pause(name: string, decision: OperatorDecision): Promise<S> {
    return this.update(name, this.kind.updates.pause, decision);
  }

  /** Carries on after a pause or a tripped circuit breaker. */
  resume(name: string, decision: OperatorDecision): Promise<S> {
    return this.update(name, this.kind.updates.resume, decision);
  }

  /** The run id of the run of this name that is running, if one is. */
  protected running(name: string): Promise<string | undefined> {
    return runningRunId(this.temporal, this.kind.workflowId(name));
  }

  private update<A>(name: string, update: UpdateDefinition<S, [A]>, decision: A): Promise<S> {
    const target = {
      workflowId: this.kind.workflowId(name),
      subject: this.kind.subject(name),
      status: this.kind.status,
    };
    return sendOperatorUpdate(this.temporal, target, update, decision);
  }
}
