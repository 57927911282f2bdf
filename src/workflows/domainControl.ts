import { finishedOf, type OutcomeCounts } from './usersWindow.js';
import type { BreakerThresholds, DomainControlState, Pause } from './enterpriseDefinitions.js';

type Counts = OutcomeCounts;

/**
 * What operators decide about a domain's users phase, as plain state carried across continue-as-new: whether it is
 * paused (by whom, why), and the outcomes counted when it last resumed, from which the circuit breaker counts. The
 * workflow asks it and acts; it makes no call itself.
 */
export class DomainControl {
  paused: Pause | undefined;
  /** The outcomes when the phase began or last resumed: the breaker judges only what came after. */
  #since: { failed: number; finished: number };

  constructor(
    readonly breaker: BreakerThresholds | undefined,
    state: DomainControlState = { since: { failed: 0, finished: 0 } },
  ) {
    this.paused = state.paused;
    this.#since = { ...state.since };
  }

  pause(pause: Pause): void {
    this.paused = pause;
  }

  /** Resuming forgives the failures so far: the breaker trips again only on as many new ones. */
  resume(counts: Counts): void {
    this.paused = undefined;
    this.#since = { failed: counts['failed'] ?? 0, finished: finishedOf(counts) };
  }

  /**
   * Why the breaker trips on these outcomes, or undefined: at least `minFailures` users failed since the phase
   * began or resumed, and they are at least `failureRatio` of the users finished since.
   */
  tripReason(counts: Counts): string | undefined {
    if (!this.breaker || this.paused) return undefined;
    const failed = (counts['failed'] ?? 0) - this.#since.failed;
    const finished = finishedOf(counts) - this.#since.finished;
    if (failed < this.breaker.minFailures || failed < this.breaker.failureRatio * finished) return undefined;
    return `circuit breaker: ${failed} of ${finished} users failed`;
  }

  carry(): DomainControlState {
    return { paused: this.paused, since: { ...this.#since } };
  }
}
