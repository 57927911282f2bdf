import type { EnterpriseUserResult, UsersProgress } from './enterpriseDefinitions.js';
import { BATCH_SIZE, type Batch } from './usersWindow.js';

/**
 * The users phase of runs before USERS_STARTED_BY_ACTIVITY (enterpriseDowngrade.ts), kept so that they replay and
 * finish as they began: children started by the domain's run, each signalling its result back.
 *
 * The sliding window over a domain's captured users, as plain state: the next position to start,
 * the positions in flight, and the outcomes counted so far. It decides, and the workflow acts: `takeBatch` says
 * which users to start next, `finish` records a user's result. Everything here travels across continue-as-new
 * (`carry`), so a run that continues starts where the last one stopped.
 */
export class LegacyChildrenWindow {
  readonly inFlight: Set<number>;
  readonly counts: UsersProgress['counts'];
  next: number;
  /** A batch smaller than this waits for more places, so that one Cronofy call serves several users. */
  readonly #minimumBatch: number;

  constructor(
    readonly size: number,
    readonly userCount: number,
    progress: Pick<UsersProgress, 'nextPosition' | 'inFlight' | 'counts'>,
  ) {
    this.inFlight = new Set(progress.inFlight);
    this.counts = { ...progress.counts };
    this.next = progress.nextPosition;
    this.#minimumBatch = Math.min(BATCH_SIZE, Math.max(1, Math.floor(size / 4)));
  }

  /** Every user has been started and has finished. */
  get done(): boolean {
    return this.next >= this.userCount && this.inFlight.size === 0;
  }

  /** Counts a user's result once; a repeated report (a retried signal) changes nothing. */
  finish(result: EnterpriseUserResult): void {
    if (this.inFlight.delete(result.position)) {
      this.counts[result.state] = (this.counts[result.state] ?? 0) + 1;
    }
  }

  /**
   * The next users to start, their places in the window taken: up to a full batch, but nothing while fewer than the
   * minimum batch fit, unless they are the domain's last users.
   */
  takeBatch(): Batch | undefined {
    const size = Math.min(BATCH_SIZE, this.size - this.inFlight.size, this.userCount - this.next);
    if (size <= 0 || (size < this.#minimumBatch && this.next + size < this.userCount)) return undefined;
    const batch = { from: this.next, size };
    for (let position = batch.from; position < batch.from + size; position += 1) this.inFlight.add(position);
    this.next += size;
    return batch;
  }

  /** What the next run needs to carry on. */
  carry(): Pick<UsersProgress, 'nextPosition' | 'inFlight' | 'counts'> {
    return { nextPosition: this.next, inFlight: [...this.inFlight], counts: this.counts };
  }
}
