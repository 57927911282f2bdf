import type { UsersProgress } from './enterpriseDefinitions.js';

/** Cronofy accepts up to 50 users per service-account authorization request. */
export const BATCH_SIZE = 50;

/**
 * How often the domain reads its users' outcomes: a second after users were started or finished, then less and
 * less often while nothing changes (users may take days).
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
    this.pollDelayMs = POLL.firstMs;
    return batch;
  }

  /** The outcomes recorded now: progress resets the wait before the next read, none doubles it. */
  update(counts: Counts): void {
    const before = this.finished;
    this.counts = { ...counts };
    this.pollDelayMs = this.finished > before ? POLL.firstMs : Math.min(POLL.longestMs, this.pollDelayMs * 2);
  }
}
