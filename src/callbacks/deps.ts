import type { Client } from '@temporalio/client';
import { reauthorizationCallback, type ReauthorizationCallback } from '../workflows/definitions.js';
import { userAccessCallback, type UserAccessCallback } from '../workflows/enterpriseDefinitions.js';
import type { CredentialStore } from '../store/credentialStore.js';
import type { StateSigner } from './stateToken.js';

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
  signalReauthorization(workflowId: string, callback: ReauthorizationCallback): Promise<void>;
  signalUserAccess(workflowId: string, callback: UserAccessCallback): Promise<void>;
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
    signalReauthorization: (workflowId, callback) =>
      temporal.workflow.getHandle(workflowId).signal(reauthorizationCallback, callback),
    signalUserAccess: (workflowId, callback) =>
      temporal.workflow.getHandle(workflowId).signal(userAccessCallback, callback),
  };
}
