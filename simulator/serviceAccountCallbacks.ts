import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { defaultCallbackDelayMs, describeError, type Outcome } from './enterpriseOutcomes.js';
import type { DeliverySession, ServiceAccount } from './enterpriseState.js';
import type { SimulatorState } from './state.js';

export interface UserAccessRequest {
  email: string;
  callbackUrl: string;
  scope: string;
  state: string | undefined;
}

// Inferred, not documented by Cronofy: a few callbacks in flight at once, each with a timeout, and a receiver that
// does not answer 2xx is retried a few times with exponential backoff before the callback is given up.
const concurrency = 10;
const callbackTimeoutMs = 10_000;
const retryLimit = 3;
const firstRetryDelayMs = 200;
const nonSuccessStatuses = Array.from({ length: 200 }, (_, index) => 400 + index);

/**
 * Sends the asynchronous answers to Request User Access: one `POST {callback_url}` per requested user, as the
 * outcome script says. These are outbound calls, so the application's rate limit never sees them.
 */
export class ServiceAccountCallbacks {
  #inFlight = 0;
  #waiting: (() => Promise<void>)[] = [];

  constructor(private readonly state: SimulatorState) {}

  schedule(serviceAccount: ServiceAccount, requests: readonly UserAccessRequest[]): void {
    const session = this.state.enterprise.deliveries;
    for (const request of requests) {
      const outcome = this.state.enterprise.outcomes.outcomeFor(request.email);
      session.counts.pending += 1;
      void this.#handle(serviceAccount, request, outcome, session);
    }
  }

  async #handle(
    serviceAccount: ServiceAccount,
    request: UserAccessRequest,
    outcome: Outcome,
    { signal, counts }: DeliverySession,
  ): Promise<void> {
    try {
      const delayMs = outcome.kind === 'late' ? outcome.delayMs : defaultCallbackDelayMs;
      await sleep(delayMs, undefined, { signal });
      const sent = await this.#inTurn(() => this.#deliver(serviceAccount, request, outcome, signal));
      if (sent) counts.delivered += 1;
      else counts.withheld += 1;
    } catch {
      // Aborted by a reset or by closing the simulator: nobody is counting any more.
      if (!signal.aborted) counts.failed += 1;
    } finally {
      counts.pending -= 1;
      this.state.markChanged();
    }
  }

  /** Grants the access (unless the outcome is an error) and sends the callback; false when none is sent. */
  async #deliver(
    serviceAccount: ServiceAccount,
    request: UserAccessRequest,
    outcome: Outcome,
    signal: AbortSignal,
  ): Promise<boolean> {
    signal.throwIfAborted();
    if (outcome.kind === 'no_callback' || serviceAccount.revoked) return false;
    if (outcome.kind === 'error') {
      const error = {
        error: outcome.error,
        error_key: outcome.error,
        error_description: describeError(outcome.error),
      };
      await this.#post(request.callbackUrl, { authorization: error }, signal);
      return true;
    }
    const authorization = this.state.enterprise.grantUserAccess(serviceAccount, request.email, request.scope);
    // The code is exchanged with redirect_uri = exactly this callback_url, query string included.
    const code = this.state.issueCode(authorization, request.callbackUrl);
    const body = { authorization: { code, state: request.state } };
    await this.#post(request.callbackUrl, body, signal);
    if (outcome.kind === 'duplicate') await this.#post(request.callbackUrl, body, signal);
    return true;
  }

  async #post(url: string, body: unknown, signal: AbortSignal): Promise<void> {
    await got.post(url, {
      json: body,
      signal,
      timeout: { request: callbackTimeoutMs },
      retry: {
        limit: retryLimit,
        methods: ['POST'],
        statusCodes: nonSuccessStatuses,
        calculateDelay: ({ attemptCount, computedValue }) =>
          computedValue === 0 ? 0 : firstRetryDelayMs * 2 ** (attemptCount - 1),
      },
    });
  }

  /** Runs the job once fewer than `concurrency` callbacks are in flight. */
  #inTurn<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => job().then(resolve, reject));
      this.#startWaiting();
    });
  }

  #startWaiting(): void {
    while (this.#inFlight < concurrency) {
      const next = this.#waiting.shift();
      if (!next) return;
      this.#inFlight += 1;
      void next().finally(() => {
        this.#inFlight -= 1;
        this.#startWaiting();
      });
    }
  }
}
