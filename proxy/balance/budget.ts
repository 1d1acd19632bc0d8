// The retry budget (Linkerd's): retries may add at most `ratio` of the
// requests seen in the last window, plus `minPerSecond` × window seconds, so a
// service that fails everything gets a bounded extra load instead of a
// retry storm. Counted in one-second buckets of a ring: a request and a
// retry each cost an array write, no allocation.

export interface BudgetOptions {
  ratio: number;
  minPerSecond: number;
  windowMs: number;
}

const BUCKET_MS = 1000;

export class RetryBudget {
  readonly #requests: Float64Array;
  readonly #retries: Float64Array;
  /** Index of the bucket the time `#bucketStart` falls in. */
  #head = 0;
  #bucketStart: number;
  #reqSum = 0;
  #retrySum = 0;
  readonly #floor: number;

  constructor(private readonly o: BudgetOptions, now: number) {
    const n = Math.max(1, Math.round(o.windowMs / BUCKET_MS));
    this.#requests = new Float64Array(n);
    this.#retries = new Float64Array(n);
    this.#bucketStart = now;
    this.#floor = o.minPerSecond * (n * BUCKET_MS / 1000);
  }

  /** An original request (not a retry) was sent: it earns `ratio` of a retry. */
  deposit(now: number): void {
    this.#advance(now);
    this.#requests[this.#head]!++;
    this.#reqSum++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  withdraw(now: number): boolean {
    this.#advance(now);
    if (this.#retrySum + 1 > this.#reqSum * this.o.ratio + this.#floor) return false;
    this.#retries[this.#head]!++;
    this.#retrySum++;
    return true;
  }

  #advance(now: number): void {
    const n = this.#requests.length;
    let steps = Math.floor((now - this.#bucketStart) / BUCKET_MS);
    if (steps <= 0) return;
    this.#bucketStart += steps * BUCKET_MS;
    if (steps > n) steps = n;
    for (let i = 0; i < steps; i++) {
      this.#head = (this.#head + 1) % n;
      this.#reqSum -= this.#requests[this.#head]!;
      this.#retrySum -= this.#retries[this.#head]!;
      this.#requests[this.#head] = 0;
      this.#retries[this.#head] = 0;
    }
  }
}
