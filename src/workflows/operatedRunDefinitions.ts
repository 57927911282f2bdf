/**
 * The contract every operated run shares (a domain's downgrade, a campaign): the operators' updates, defined once.
 * Both kinds answer the same names, so operators, the clients and the Temporal CLI use them alike
 * (`temporal workflow update execute --name approve …`).
 */
import type { UpdateDefinition } from '@temporalio/common';
import { defineUpdate } from '@temporalio/workflow';

/** Who decides: recorded on the run as given (an operator's name or email, a ticket). */
export interface OperatorDecision {
  by: string;
  reason?: string;
}

/**
 * Each update answers with the run's status after it took effect; its validator refuses, before anything is
 * written to history, a request that does not fit the run's phase. `pause` answers once the run has no Cronofy
 * call of its own in flight and starts no user.
 */
export interface OperatorUpdates<S> {
  approve: UpdateDefinition<S, [OperatorDecision & { previewId: string }]>;
  reject: UpdateDefinition<S, [OperatorDecision]>;
  pause: UpdateDefinition<S, [OperatorDecision]>;
  resume: UpdateDefinition<S, [OperatorDecision]>;
}

/** The operators' updates of a run whose status is `S`. */
export function operatorUpdates<S>(): OperatorUpdates<S> {
  return {
    approve: defineUpdate<S, [OperatorDecision & { previewId: string }]>('approve'),
    reject: defineUpdate<S, [OperatorDecision]>('reject'),
    pause: defineUpdate<S, [OperatorDecision]>('pause'),
    resume: defineUpdate<S, [OperatorDecision]>('resume'),
  };
}
