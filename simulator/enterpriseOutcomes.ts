import { z } from 'zod';

/** What happens to one requested user: the script a test sets through `PUT /_sim/enterprise/outcomes`. */
export const outcomeSchema = z.discriminatedUnion('kind', [
  // Access granted with the service account's provider (Free/Busy when the administrator chose it).
  z.object({ kind: z.literal('free_busy') }),
  z.object({ kind: z.literal('error'), error: z.string().min(1) }),
  z.object({ kind: z.literal('no_callback') }),
  // Granted, but the callback comes only after delayMs.
  z.object({ kind: z.literal('late'), delayMs: z.number().int().nonnegative().max(600_000) }),
  // Granted, and the same success callback is sent twice.
  z.object({ kind: z.literal('duplicate') }),
]);

export type Outcome = z.infer<typeof outcomeSchema>;

export const outcomeScriptSchema = z.object({
  default: outcomeSchema.optional(),
  byEmail: z.record(z.email(), outcomeSchema).optional(),
});

export type OutcomeScriptInput = z.infer<typeof outcomeScriptSchema>;

const defaultOutcome: Outcome = { kind: 'free_busy' };

/** Cronofy answers within moments; a short delay still keeps the callback after the 202. */
export const defaultCallbackDelayMs = 10;

export class OutcomeScript {
  #default: Outcome = defaultOutcome;
  #byEmail = new Map<string, Outcome>();

  /** Replaces the whole script: what is not named falls back to the defaults. */
  set(input: OutcomeScriptInput): void {
    this.#default = input.default ?? defaultOutcome;
    this.#byEmail = new Map(
      Object.entries(input.byEmail ?? {}).map(([email, outcome]) => [email.toLowerCase(), outcome]),
    );
  }

  reset(): void {
    this.set({});
  }

  outcomeFor(email: string): Outcome {
    return this.#byEmail.get(email.toLowerCase()) ?? this.#default;
  }

  describe(): OutcomeScriptInput {
    return { default: this.#default, byEmail: Object.fromEntries(this.#byEmail) };
  }
}

/** Descriptions for the errors Cronofy documents; any other scripted error gets a generic one. */
export function describeError(error: string): string {
  return error === 'unable_to_grant_scope'
    ? 'The service account is unable to grant the requested scope for this user.'
    : `The authorization could not be granted (${error}).`;
}
