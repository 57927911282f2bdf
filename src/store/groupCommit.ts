/**
 * Group commit: a call made while a batch is in flight waits, and leaves with every other call that arrived
 * meanwhile, as one batch, when that batch returns. An idle store sends a call at once, alone; under load each
 * round trip carries what arrived during the previous one, so the round trips (and their system calls) grow with
 * the load's duration, not with its number of calls.
 */
export class GroupCommit<Input, Output> {
  readonly #run: (inputs: Input[]) => Promise<Output[]>;
  readonly #maxBatch: number;
  #queue: Array<{ input: Input; resolve: (output: Output) => void; reject: (error: unknown) => void }> = [];
  #inFlight = false;

  /** `run` answers its inputs in order, one output each; if it throws, every call of the batch throws that. */
  constructor(run: (inputs: Input[]) => Promise<Output[]>, options: { maxBatch: number }) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError('maxBatch must be a positive integer');
    }
    this.#run = run;
    this.#maxBatch = options.maxBatch;
  }

  submit(input: Input): Promise<Output> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#inFlight = true;
    // Through a promise, so that a `run` that throws instead of rejecting fails its batch too.
    Promise.resolve(batch.map(({ input }) => input))
      .then((inputs) => this.#run(inputs))
      .then((outputs) => {
        if (outputs.length !== batch.length) {
          throw new Error(`a batch of ${batch.length} was answered with ${outputs.length} outputs`);
        }
        batch.forEach(({ resolve }, i) => resolve(outputs[i]!));
      })
      .catch((error: unknown) => batch.forEach(({ reject }) => reject(error)))
      .finally(() => {
        this.#inFlight = false;
        this.#next();
      });
  }
}
