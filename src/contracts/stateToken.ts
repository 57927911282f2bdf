import { randomBytes, webcrypto } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { z } from 'zod';

/**
 * What a `state` value binds a callback to: one workflow, one purpose, one prompt, used once. `runId` names the run
 * that issued it, so its signal goes straight to that run, and `firstRunId` its chain (a reset or a continue-as-new
 * keeps it; a later downgrade under the same workflow id does not).
 */
export type StatePurpose =
  'individual_link' | 'individual_reauthorization' | 'enterprise_admin' | 'enterprise_user' | 'consent_link';

/** The run a state comes from: the workflow, the run and its chain's first run. */
export interface IssuingRun {
  workflowId: string;
  runId: string;
  firstRunId: string;
}

/** One prompt of a run, as the activity that asks the human receives it: whose, which, and until when. */
export interface PromptRequest extends IssuingRun {
  prompt: number;
  /** When its `state` expires (epoch milliseconds). */
  expiresAt: number;
}

/** Just the IssuingRun fields of an activity's input, for a state's claims. */
export function issuingRun({ workflowId, runId, firstRunId }: IssuingRun): IssuingRun {
  return { workflowId, runId, firstRunId };
}

const StateClaims = z.object({
  workflowId: z.string().min(1),
  runId: z.string().min(1),
  firstRunId: z.string().min(1),
  purpose: z.string().min(1),
  prompt: z.number().int().positive(),
  nonce: z.string().min(16),
});
export type StateClaims = z.infer<typeof StateClaims> & { purpose: StatePurpose };

export type InvalidStateReason = 'malformed' | 'forged' | 'expired' | 'wrong_purpose';

export class InvalidStateError extends Error {
  override readonly name = 'InvalidStateError';
  constructor(readonly reason: InvalidStateReason) {
    super(`state is ${reason.replace('_', ' ')}`);
  }
}

const ISSUER = 'cronofy-downgrade';

/**
 * The reference the page after consent carries in its URL: which run got the answer to which prompt, and whether a
 * person or an administrator answered it. It reads that run's status and nothing else. Its own issuer keeps it
 * apart from a `state`: neither is accepted as the other.
 */
const AnswerClaims = z.object({
  workflowId: z.string().min(1),
  runId: z.string().min(1),
  prompt: z.number().int().positive(),
  asked: z.enum(['person', 'administrator']),
});
export type AnswerClaims = z.infer<typeof AnswerClaims>;

const ANSWER_ISSUER = 'cronofy-downgrade/answered';

/**
 * Signs and verifies `state` as a compact HS256 JWT; single use is enforced by whoever consumes the nonce. Signs and
 * verifies the answered page's reference the same way.
 */
export class StateSigner {
  /**
   * Imported once: given raw bytes, jose imports a WebCrypto key on every call, which roughly doubles the CPU of each
   * verification (bench/callbacks.ts; every bad callback pays it too).
   */
  private readonly key: Promise<webcrypto.CryptoKey>;

  constructor(secret: string) {
    this.key = webcrypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    // Surfaced where the key is awaited; not an unhandled rejection in between.
    this.key.catch(() => {});
  }

  static newNonce(): string {
    return randomBytes(18).toString('base64url');
  }

  async sign(claims: StateClaims, expiresAt: Date): Promise<string> {
    return this.#signed({ ...claims }, ISSUER, expiresAt);
  }

  /** A `state` for one prompt of the run that issues it, under a fresh nonce, which it returns too. */
  async issue(request: PromptRequest, purpose: StatePurpose): Promise<{ state: string; nonce: string }> {
    const nonce = StateSigner.newNonce();
    const claims = { ...issuingRun(request), purpose, prompt: request.prompt, nonce };
    return { state: await this.sign(claims, new Date(request.expiresAt)), nonce };
  }

  async verify(state: string, purposes: readonly StatePurpose[]): Promise<StateClaims & { expiresAt: Date }> {
    const payload = await this.#payload(state, ISSUER);
    const claims = StateClaims.safeParse(payload);
    if (!claims.success || payload.exp === undefined) throw new InvalidStateError('malformed');
    const purpose = purposes.find((allowed) => allowed === claims.data.purpose);
    if (!purpose) throw new InvalidStateError('wrong_purpose');
    return { ...claims.data, purpose, expiresAt: new Date(payload.exp * 1000) };
  }

  async signAnswer(claims: AnswerClaims, expiresAt: Date): Promise<string> {
    return this.#signed({ ...claims }, ANSWER_ISSUER, expiresAt);
  }

  /** The claims of an answered page's reference; InvalidStateError (never `wrong_purpose`) when it is refused. */
  async verifyAnswer(token: string): Promise<AnswerClaims> {
    const payload = await this.#payload(token, ANSWER_ISSUER);
    const claims = AnswerClaims.safeParse(payload);
    if (!claims.success || payload.exp === undefined) throw new InvalidStateError('malformed');
    return claims.data;
  }

  async #signed(claims: JWTPayload, issuer: string, expiresAt: Date): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer)
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(await this.key);
  }

  async #payload(token: string, issuer: string): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, await this.key, { issuer, algorithms: ['HS256'] })).payload;
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new InvalidStateError('expired');
      if (error instanceof errors.JWSSignatureVerificationFailed) throw new InvalidStateError('forged');
      throw new InvalidStateError('malformed');
    }
  }
}
