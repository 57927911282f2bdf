import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/workflow';
import { openLink, reauthorizationCallback, type ReauthorizationCallback } from '../workflows/definitions.js';
import { userAccessCallback, type UserAccessCallback } from '../workflows/enterpriseDefinitions.js';
import type { CredentialStore } from '../store/credentialStore.js';
import type { IssuingRun, StateSigner } from '../contracts/stateToken.js';

/** Where a callback's code waits, encrypted, until the workflow's exchange activity reads it. */
export const CODE_TTL_SECONDS = 60 * 60;

/** The first use of a state stores the code it carried (if any); undefined on a replay. */
export async function claimCallback(
  deps: CallbackDeps,
  claims: { nonce: string; expiresAt: Date },
  code: string | undefined,
): Promise<{ codeRef?: string } | undefined> {
  const claimed = await deps.store.claimStateNonce(
    claims.nonce,
    claims.expiresAt,
    code === undefined
      ? undefined
      : { purpose: 'authorization_code', plaintext: code, ttlSeconds: CODE_TTL_SECONDS },
  );
  return claimed && { codeRef: claimed.secretRef };
}

/** What the callback handlers need: no Cronofy client, no tokens; codes go straight into the store. */
export interface CallbackDeps {
  stateSigner: StateSigner;
  /** Where a callback's nonce is used and its code kept (see CredentialStore.claimStateNonce). */
  store: Pick<CredentialStore, 'claimStateNonce' | 'releaseStateNonce' | 'deleteSecret'>;
  signalReauthorization(target: IssuingRun, callback: ReauthorizationCallback): Promise<void>;
  signalUserAccess(target: IssuingRun, callback: UserAccessCallback): Promise<void>;
  /** Tells the run that issued an open link that the person opened it; answers the consent URL. */
  openLink(target: IssuingRun, nonce: string): Promise<string>;
}

/** How each way a `state` can be bad is answered: status, title, message for the person. */
export const stateRejections = {
  malformed: [400, 'This link is not valid', 'The sign-in link was damaged or is not one we issued.'],
  forged: [400, 'This link is not valid', 'The sign-in link was not issued by this service.'],
  wrong_purpose: [400, 'This link is not valid', 'The sign-in link was issued for something else.'],
  expired: [410, 'This link has expired', 'Ask the application for a new link.'],
} as const;

/** The production wiring: codes and nonces in the credential store, signals sent through a Temporal client. */
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
  };
}

/**
 * Signals the run that issued the state. A signal that names no run makes the server read the current run from its
 * database before it writes: while a burst of callbacks was answered, 1.0 of the 2.1-2.5 database requests each
 * one cost the dev server (bench/README.md). Once that run has ended, an operator's reset or a continue-as-new has
 * left its chain running under a new run, which gets the signal. A later downgrade under the same workflow id is
 * another chain, and a state issued for an ended one is not its business: that, like a workflow that ended
 * altogether, is a WorkflowNotFoundError. States issued before runs were named in them signal the current run, as
 * they did then.
 */
async function signalIssuingRun<T>(
  temporal: Client,
  target: IssuingRun,
  signal: SignalDefinition<[T]>,
  arg: T,
): Promise<void> {
  if (target.runId === undefined) {
    await temporal.workflow.getHandle(target.workflowId).signal(signal, arg);
    return;
  }
  try {
    await temporal.workflow.getHandle(target.workflowId, target.runId).signal(signal, arg);
    return;
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  // The chain may move on again between the look and the signal (another reset): look again, a few times.
  for (let attempt = 1; ; attempt += 1) {
    const current = await temporal.workflow.getHandle(target.workflowId).describe();
    const currentChain = current.raw.workflowExecutionInfo?.firstRunId;
    // A server that does not report the chain cannot tell: the current run gets it, as before run ids.
    const sameChain = !target.firstRunId || !currentChain || currentChain === target.firstRunId;
    if (current.status.name !== 'RUNNING' || !sameChain) {
      throw new WorkflowNotFoundError(
        'The run that issued this state has ended, and no run of its chain is running',
        target.workflowId,
        target.runId,
      );
    }
    try {
      await temporal.workflow.getHandle(target.workflowId, current.runId).signal(signal, arg);
      return;
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError) || attempt === 3) throw error;
    }
  }
}
