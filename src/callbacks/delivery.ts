import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { markCallbackResult } from '../observability/metrics.js';
import type { CredentialStore } from '../store/credentialStore.js';
import type { DowngradeStatus, ReauthorizationCallback } from '../workflows/definitions.js';
import type { UserAccessCallback } from '../workflows/enterpriseDefinitions.js';
import type { AskedStatus } from './verdict.js';
import {
  type AnswerClaims,
  InvalidStateError,
  type InvalidStateReason,
  type IssuingRun,
  type StateClaims,
  type StatePurpose,
  type StateSigner,
} from '../contracts/stateToken.js';

/** Where a callback's code waits, encrypted, until the workflow's exchange activity reads it. */
export const CODE_TTL_SECONDS = 60 * 60;

/** What the callback handlers need: no Cronofy client, no tokens; codes go straight into the store. */
export interface CallbackDeps {
  stateSigner: StateSigner;
  /** Where a callback's nonce is used and its code kept (see CredentialStore.claimStateNonce). */
  store: Pick<CredentialStore, 'claimStateNonce' | 'releaseStateNonce' | 'deleteSecret'>;
  /** Each signal answers the run it reached: the issuing run, or its chain's current one. */
  signalReauthorization(target: IssuingRun, callback: ReauthorizationCallback): Promise<string>;
  signalUserAccess(target: IssuingRun, callback: UserAccessCallback): Promise<string>;
  /** Tells the run that issued an open link that the person opened it; answers the consent URL. */
  openLink(target: IssuingRun, nonce: string): Promise<string>;
  /** The status of the downgrade run that issued a consent link (WorkflowNotFoundError when there is none). */
  downgradeStatus(target: IssuingRun): Promise<DowngradeStatus>;
  /** Has that run replace its expired consent request with a fresh one; answers its URL. */
  renewConsentRequest(target: IssuingRun): Promise<string>;
  /**
   * The status of the run that got an answer, by its status query: nothing is written to its history. Gives up at
   * `deadline`; a run that does not exist (any more) is a WorkflowNotFoundError.
   */
  readStatus(answer: AnswerClaims, deadline: Date): Promise<AskedStatus>;
}

/** The HTTP status each way a `state` can be bad is answered with. */
export const stateRejectionStatus: Record<InvalidStateReason, number> = {
  malformed: 400,
  forged: 400,
  wrong_purpose: 400,
  expired: 410,
};

/** A state's claims, or why it is refused (logged and counted by the endpoint's name). */
export async function verifyState(
  deps: CallbackDeps,
  request: FastifyRequest,
  state: string,
  purposes: StatePurpose[],
): Promise<VerifiedState | { refused: InvalidStateReason }> {
  try {
    return await deps.stateSigner.verify(state, purposes);
  } catch (error) {
    if (!(error instanceof InvalidStateError)) throw error;
    request.log.warn({ reason: error.reason }, 'callback rejected: bad state');
    markCallbackResult(request, error.reason);
    return { refused: error.reason };
  }
}

type VerifiedState = StateClaims & { expiresAt: Date };

/** How a callback's delivery ended; each endpoint answers it in its own way. */
export type Delivery =
  /** `runId`: the run that got the signal. */
  | { outcome: 'delivered'; claims: StateClaims; runId: string; codeRef?: string }
  | { outcome: 'bad_state'; reason: InvalidStateReason }
  /** Its state was used before: a replay, or Cronofy resending. */
  | { outcome: 'used'; claims: StateClaims }
  /** No run of the state's chain is running. */
  | { outcome: 'not_running'; claims: StateClaims }
  /** Temporal could not be reached: nothing was kept, and the same callback works again later. */
  | { outcome: 'unavailable'; claims: StateClaims };

/**
 * The one path of every callback that carries a code or an error: verify the state → use its nonce, keeping the
 * code (if any) encrypted → signal the run that issued it → on failure, undo (the code deleted; the nonce released
 * unless the run is gone, so that a retry works).
 */
export async function deliverCallback(
  deps: CallbackDeps,
  request: FastifyRequest,
  callback: {
    state: string;
    purposes: StatePurpose[];
    code: string | undefined;
    signal(claims: StateClaims, codeRef: string | undefined): Promise<string>;
  },
): Promise<Delivery> {
  const claims = await verifyState(deps, request, callback.state, callback.purposes);
  if ('refused' in claims) return { outcome: 'bad_state', reason: claims.refused };
  const claimed = await deps.store.claimStateNonce(
    claims.nonce,
    claims.expiresAt,
    callback.code === undefined
      ? undefined
      : { purpose: 'authorization_code', plaintext: callback.code, ttlSeconds: CODE_TTL_SECONDS },
  );
  if (!claimed) {
    request.log.info({ workflowId: claims.workflowId }, 'callback for a state already used');
    return { outcome: 'used', claims };
  }
  const codeRef = claimed.secretRef;
  let runId: string;
  try {
    runId = await callback.signal(claims, codeRef);
  } catch (error) {
    if (codeRef) await deps.store.deleteSecret(codeRef);
    if (error instanceof WorkflowNotFoundError) {
      request.log.warn(
        { workflowId: claims.workflowId },
        'callback for a downgrade that is no longer running',
      );
      markCallbackResult(request, 'not_running');
      return { outcome: 'not_running', claims };
    }
    await deps.store.releaseStateNonce(claims.nonce);
    request.log.error({ err: error, workflowId: claims.workflowId }, 'could not deliver callback');
    markCallbackResult(request, 'unavailable');
    return { outcome: 'unavailable', claims };
  }
  request.log.info(
    { workflowId: claims.workflowId, outcome: codeRef ? 'code' : 'error' },
    'callback delivered',
  );
  markCallbackResult(request, 'delivered');
  return { outcome: 'delivered', claims, runId, codeRef };
}
