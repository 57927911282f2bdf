import type { UsersProgress } from './enterpriseDefinitions.js';

/** Cronofy accepts up to 50 users per service-account authorization request. */
export const BATCH_SIZE = 50;

/**
 * How often the domain reads its users' outcomes: at first a second after users were started; while users finish,
 * about as often as a minimum batch of them finishes (each read is an activity and its wait a timer, both billed
 * actions, and a read that frees fewer places than a batch starts nobody); less and less often while nothing
 * changes (users may take days).
 */
export const POLL = { firstMs: 1_000, longestMs: 60_000 } as const;

export interface Batch {
  /** Position of the batch's first user in the capture. */
  from: number;
  size: number;
}

/** Users by outcome state (the states of a domain's users, or of Individual downgrades). */
export type OutcomeCounts = Partial<Record<string, number>>;

/** How many users have an outcome. */
export function finishedOf(counts: OutcomeCounts): number {
  return Object.values(counts).reduce<number>((sum, count) => sum + (count ?? 0), 0);
}
type Counts = OutcomeCounts;

/**
 * The users phase's sliding window over a domain's captured users, as plain state: the next position to start and
 * the outcomes recorded so far (read from the store, where each user's workflow records its own). Users in flight
 * are those started and not finished. It decides, and the workflow acts: `takeBatch` names the users to start
 * next, `update` takes the latest counts and sets how long to wait before reading them again.
 */
export class UsersWindow {
  next: number;
  counts: Counts;
  /** How long to wait before reading the outcomes again. */
  pollDelayMs: number = POLL.firstMs;
  /** The wait the last progress called for: what a started batch waits before its first read. */
  #progressDelayMs: number = POLL.firstMs;
  /** A batch smaller than this waits for more places, so that one Cronofy call serves several users. */
  readonly #minimumBatch: number;

  constructor(
    readonly size: number,
    readonly userCount: number,
    progress: Pick<UsersProgress, 'nextPosition' | 'counts'>,
  ) {
    this.next = progress.nextPosition;
    this.counts = { ...progress.counts };
    this.#minimumBatch = Math.min(BATCH_SIZE, Math.max(1, Math.floor(size / 4)));
  }

  get finished(): number {
    return finishedOf(this.counts);
  }

  get inFlight(): number {
    return this.next - this.finished;
  }

  /** Every user has been started and has an outcome. */
  get done(): boolean {
    return this.next >= this.userCount && this.finished >= this.userCount;
  }

  /**
   * The next users to start: up to a full batch, but nothing while fewer than the minimum batch fit, unless they
   * are the domain's last users.
   */
  takeBatch(): Batch | undefined {
    const size = Math.min(BATCH_SIZE, this.size - this.inFlight, this.userCount - this.next);
    if (size <= 0 || (size < this.#minimumBatch && this.next + size < this.userCount)) return undefined;
    const batch = { from: this.next, size };
    this.next += size;
    this.pollDelayMs = this.#progressDelayMs;
    return batch;
  }

  /**
   * The outcomes recorded now, read `pollDelayMs` after the last: progress sets the next wait to the time a minimum
   * batch (or the users still in flight, when fewer) takes to finish at the pace just seen; none doubles it.
   */
  update(counts: Counts): void {
    const finished = this.finished;
    this.counts = { ...counts };
    const progress = this.finished - finished;
    if (progress > 0) {
      const batchMs = (this.pollDelayMs * Math.min(this.#minimumBatch, this.inFlight)) / progress;
      this.#progressDelayMs = Math.round(Math.min(POLL.longestMs, Math.max(POLL.firstMs, batchMs)));
      this.pollDelayMs = this.#progressDelayMs;
    } else {
      this.pollDelayMs = Math.min(POLL.longestMs, this.pollDelayMs * 2);
    }
  }
}
