import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/workflow';
import type { IssuingRun, StateSigner } from '../contracts/stateToken.js';
import {
  getStatus,
  openLink,
  reauthorizationCallback,
  renewConsentRequest,
} from '../workflows/definitions.js';
import { getEnterpriseStatus, userAccessCallback } from '../workflows/enterpriseDefinitions.js';
import type { CallbackDeps } from './delivery.js';
import type { AskedStatus } from './verdict.js';

/**
 * The production wiring: codes and nonces in the credential store, signals sent and status queries made through a
 * Temporal client.
 */
export function temporalCallbackDeps(
  temporal: Client,
  store: CallbackDeps['store'],
  stateSigner: StateSigner,
): CallbackDeps {
  return {
    stateSigner,
    store,
    signalReauthorization: (target, callback) =>
      signalIssuingRun(temporal, target, reauthorizationCallback, callback),
    signalUserAccess: (target, callback) => signalIssuingRun(temporal, target, userAccessCallback, callback),
    openLink: async (target, nonce) => {
      const handle = temporal.workflow.getHandle(target.workflowId, target.runId);
      return (await handle.executeUpdate(openLink, { args: [{ nonce }] })).authorizationUrl;
    },
    downgradeStatus: (target) =>
      temporal.workflow.getHandle(target.workflowId, target.runId).query(getStatus),
    renewConsentRequest: async (target) => {
      const handle = temporal.workflow.getHandle(target.workflowId, target.runId);
      return (await handle.executeUpdate(renewConsentRequest)).authorizationUrl;
    },
    readStatus: (answer, deadline) =>
      temporal.withDeadline(deadline, async (): Promise<AskedStatus> => {
        // The run that got the answer, even once it has ended: a query replays an ended run's history.
        const handle = temporal.workflow.getHandle(answer.workflowId, answer.runId);
        return answer.asked === 'person'
          ? { asked: 'person', status: await handle.query(getStatus) }
          : { asked: 'administrator', status: await handle.query(getEnterpriseStatus) };
      }),
  };
}

/**
 * Signals the run that issued the state. A signal that names no run makes the server read the current run from its
 * database before it writes: while a burst of callbacks was answered, 1.0 of the 2.1-2.5 database requests each
 * one cost the dev server (bench/README.md). Once that run has ended, an operator's reset or a continue-as-new has
 * left its chain running under a new run, which gets the signal. A later downgrade under the same workflow id is
 * another chain, and a state issued for an ended one is not its business: that, like a workflow that ended
 * altogether, is a WorkflowNotFoundError. Answers the run that got the signal.
 */
async function signalIssuingRun<T>(
  temporal: Client,
  target: IssuingRun,
  signal: SignalDefinition<[T]>,
  arg: T,
): Promise<string> {
  try {
    await temporal.workflow.getHandle(target.workflowId, target.runId).signal(signal, arg);
    return target.runId;
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  // The chain may move on again between the look and the signal (another reset): look again, a few times.
  for (let attempt = 1; ; attempt += 1) {
    const current = await temporal.workflow.getHandle(target.workflowId).describe();
    const currentChain = current.raw.workflowExecutionInfo?.firstRunId;
    // A server that does not report the chain cannot tell: the current run gets it.
    const sameChain = !currentChain || currentChain === target.firstRunId;
    if (current.status.name !== 'RUNNING' || !sameChain) {
      throw new WorkflowNotFoundError(
        'The run that issued this state has ended, and no run of its chain is running',
        target.workflowId,
        target.runId,
      );
    }
    try {
      await temporal.workflow.getHandle(target.workflowId, current.runId).signal(signal, arg);
      return current.runId;
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError) || attempt === 3) throw error;
    }
  }
}
