import { ActivityFailure, ApplicationFailure, log, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  CONSENT_REQUEST_RENEWAL_MARGIN_MS,
  FREE_BUSY_PROVIDERS,
  FREE_BUSY_SCOPE,
  NO_ACCESS_PROVIDER,
  reauthorizationCallback,
  type ReauthorizationCallback,
} from './definitions.js';
import { waitWithReminders } from './waiting.js';

/** What an exchange of the human's code gives: the new authorization and what Cronofy says it is. */
export interface Grant {
  credentialRef: string;
  providerName: string;
  /** `linking_profile.provider_service`; a service account's userinfo names only the provider. */
  providerService?: string;
  /** A service account's: the scopes it may grant its users (its userinfo's `delegated_scope`). */
  delegatedScope?: string;
}

/** How a re-authorization ended when it did not end in a verified Free/Busy grant. */
export type Refusal = {
  state: 'expired' | 'denied' | 'failed' | 'no_access' | 'other_account' | 'read_write_kept';
  reason: string;
};

/** The status details that hold only while the human is being asked, cleared. */
export const NOT_WAITING = {
  authorizationUrl: undefined,
  authorizationExpiresAt: undefined,
  waitingSince: undefined,
  link: undefined,
  deadline: undefined,
};

/** The run that asks, as a `state` names it (its signals go to that run, or its chain's current one). */
export function thisRun(): { workflowId: string; runId: string; firstRunId: string } {
  const { workflowId, runId, firstExecutionRunId } = workflowInfo();
  return { workflowId, runId, firstRunId: firstExecutionRunId };
}

/** A consent link for one prompt and the nonce its callback must carry. */
export interface ConsentRequest {
  authorizationUrl: string;
  nonce: string;
  /**
   * The service's own link to the person's current consent request, which works until the prompt's deadline: it
   * sends them on to `authorizationUrl` while that works, and to a fresh request after it expired.
   */
  link?: string;
}

/** When a prompt's consent request stops working, and when the prompt stops waiting (it may renew the request). */
export interface PromptTimes {
  expiresAt: number;
  deadline: number;
}

/**
 * The human asked to authorize again, and the steps that differ between a person (Individual Connect) and a domain's
 * administrator (Enterprise Connect). Everything else is the same for both, on purpose:
 * - the link expires after `deadlineMs`; the application is reminded every `reminderIntervalMs` meanwhile;
 * - "Deny" ends the downgrade `denied`; another error from Cronofy ends it `failed`;
 * - a grant of another account (another `sub` for a person, another domain for an administrator) is revoked and
 *   ends the downgrade `other_account`: asking again would reach the same browser;
 * - "No Access" is revoked and ends the downgrade `no_access` (Cronofy's Enterprise page does not offer it, but a
 *   grant reporting it is handled the same way);
 * - Read/Write (or a service account that may not delegate `free_busy_write`) is revoked and the human is asked
 *   again, up to `maxPrompts` times, then `read_write_kept`.
 */
export interface Human<G extends Grant> {
  /** Named in logs and reasons: "the person", "the administrator". */
  who: string;
  /**
   * How many prompts, how long each waits, how often the application is reminded meanwhile, and how long one
   * consent request works (by default, as long as its prompt waits).
   */
  asking: {
    maxPrompts: number;
    deadlineMs: number;
    reminderIntervalMs: number;
    consentRequestLifetimeMs?: number;
  };
  createRequest(prompt: number, times: PromptTimes): Promise<ConsentRequest>;
  /** Shows the prompt's link (the status, and the application's webhook). */
  waiting(prompt: number, request: ConsentRequest, times: PromptTimes): Promise<void>;
  remind(): Promise<void>;
  /** The callback arrived with a code: show that it is being checked. */
  verifying(): void;
  exchange(codeRef: string): Promise<G>;
  /** Whether the grant is the account that was asked. */
  isAskedAccount(grant: G): boolean;
  revoke(credentialRef: string): Promise<void>;
}

/** The inbox of the re-authorization callbacks this run is sent, taking them from now on. */
export function listenForCallbacks(): CallbackInbox {
  const inbox = new CallbackInbox();
  setHandler(reauthorizationCallback, inbox.offer);
  return inbox;
}

/**
 * Holds the callback of the prompt that is waiting. The workflow's signal handler offers every callback; only the
 * current prompt's, with its nonce, is kept, and only the first.
 */
export class CallbackInbox {
  #waiting:
    { prompt: number; nonce: string; callback?: ReauthorizationCallback; renew?: boolean } | undefined;

  open(prompt: number, nonce: string): void {
    this.#waiting = { prompt, nonce };
  }

  /** Asks for a fresh consent request in place of the waiting one (unless its callback has arrived). */
  renew(): void {
    if (this.#waiting && !this.#waiting.callback) this.#waiting.renew = true;
  }

  offer = (callback: ReauthorizationCallback): void => {
    const waiting = this.#waiting;
    if (
      !waiting ||
      waiting.callback ||
      callback.prompt !== waiting.prompt ||
      callback.nonce !== waiting.nonce
    ) {
      log.warn('Ignored a re-authorization callback that does not answer the current prompt', {
        prompt: callback.prompt,
        currentPrompt: waiting?.prompt,
      });
      return;
    }
    waiting.callback = callback;
  };

  received = (): ReauthorizationCallback | undefined => this.#waiting?.callback;

  /** The callback, or RENEW when a fresh request was asked for first. */
  answer = (): ReauthorizationCallback | typeof RENEW | undefined =>
    this.#waiting?.callback ?? (this.#waiting?.renew ? RENEW : undefined);
}

/** The person asked for a fresh consent request: the last one expired while the prompt still waits. */
export const RENEW = 'renew';

/**
 * Free/Busy as Cronofy's procedure defines it: `linking_profile.provider_name` and `provider_service` both name the
 * same Free/Busy provider. A grant whose two fields disagree is not counted as Free/Busy. A service account's
 * userinfo names only its provider, and its delegated scope, which must hold `free_busy_write`: without it, Cronofy
 * refuses the service account's access requests for its users. (A person's token names a scope too, but Cronofy
 * documents nothing of what it holds in Free/Busy mode, so it is not checked.)
 */
export function isFreeBusy(grant: Grant): boolean {
  return (
    (FREE_BUSY_PROVIDERS as readonly string[]).includes(grant.providerName) &&
    (grant.providerService === undefined || grant.providerService === grant.providerName) &&
    (grant.delegatedScope === undefined || grant.delegatedScope.split(' ').includes(FREE_BUSY_SCOPE))
  );
}

/** The exchange's code was used up by an attempt that crashed before recording its tokens (exchangeCode.ts). */
function codeLost(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === 'AuthorizationCodeLost'
  );
}

/** Asks the human until they grant Free/Busy (the verified grant) or the downgrade must end (why). */
export async function reauthorize<G extends Grant>(
  human: Human<G>,
  inbox: CallbackInbox,
): Promise<{ grant: G } | Refusal> {
  const { maxPrompts, deadlineMs, reminderIntervalMs } = human.asking;
  const lifetimeMs = human.asking.consentRequestLifetimeMs ?? deadlineMs;
  let renewing = false;
  let deadline = 0;
  for (let prompt = 1; prompt <= maxPrompts; prompt += 1) {
    // A renewed request keeps its prompt's deadline: asking afresh never extends the downgrade.
    if (!renewing) deadline = Date.now() + deadlineMs;
    // A renewed request is for someone at their browser now: it works long enough for the link not to renew it
    // again at once.
    const lifetime = renewing ? Math.max(lifetimeMs, 2 * CONSENT_REQUEST_RENEWAL_MARGIN_MS) : lifetimeMs;
    const times = { expiresAt: Math.min(deadline, Date.now() + lifetime), deadline };
    const request = await human.createRequest(prompt, times);
    inbox.open(prompt, request.nonce);
    await human.waiting(prompt, request, times);
    const callback = await waitWithReminders(inbox.answer, deadline, reminderIntervalMs, human.remind);
    renewing = callback === RENEW;
    if (callback === RENEW) {
      log.info('A fresh consent request, in place of one that expired', { prompt });
      continue;
    }
    if (!callback)
      return { state: 'expired', reason: `${human.who} did not re-authorize before the deadline` };
    if ('error' in callback) {
      return callback.error === 'access_denied'
        ? { state: 'denied', reason: `${human.who} declined` }
        : { state: 'failed', reason: `Cronofy redirected with error ${callback.error}` };
    }

    human.verifying();
    let grant: G;
    try {
      grant = await human.exchange(callback.codeRef);
    } catch (error) {
      if (!codeLost(error)) throw error;
      if (prompt === maxPrompts) {
        return {
          state: 'failed',
          reason: `${human.who}'s authorization code was lost, and no prompt is left`,
        };
      }
      log.warn('The authorization code was lost to a crash; asking again', { prompt });
      continue;
    }
    if (!human.isAskedAccount(grant)) {
      await human.revoke(grant.credentialRef);
      return { state: 'other_account', reason: `${human.who} authorized a different calendar account` };
    }
    if (isFreeBusy(grant)) return { grant };
    // Not Free/Busy: not a connection the application asked for; take it back.
    await human.revoke(grant.credentialRef);
    if (grant.providerName === NO_ACCESS_PROVIDER)
      return { state: 'no_access', reason: `${human.who} chose No Access` };
    log.info('Read/Write chosen again', {
      prompt,
      providerName: grant.providerName,
      providerService: grant.providerService,
      delegatedScope: grant.delegatedScope,
    });
  }
  return {
    state: 'read_write_kept',
    reason: `Read/Write was chosen again on all ${maxPrompts} prompts`,
  };
}
