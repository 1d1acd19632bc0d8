// Coarse deadlines for many connections without a timer each: one unref'd
// interval sweeps a Set of entries holding a plain deadline number. Arming or
// clearing a deadline is a field write, so a request costs no timer and
// 10,000 idle connections cost one Set and one sweep a tick.

export interface Expiring {
  /** ms on the Deadlines clock; Infinity when nothing is due. */
  deadline: number;
  expire(now: number): void;
}

export interface DeadlinesOptions {
  /** Sweep period; deadlines fire up to this late. Default 500 ms. */
  resolutionMs?: number;
  /** The clock (ms). Default performance.now. */
  clock?: () => number;
  /** No interval: the owner calls sweep() (tests with a fake clock). */
  manual?: boolean;
}

export class Deadlines {
  readonly #items = new Set<Expiring>();
  readonly #clock: () => number;
  readonly #resolution: number;
  readonly #manual: boolean;
  #timer: NodeJS.Timeout | undefined;
  /** The clock as of the last sweep (or read), good enough to arm coarse deadlines without a clock call. */
  now: number;

  constructor(o: DeadlinesOptions = {}) {
    this.#clock = o.clock ?? (() => performance.now());
    this.#resolution = o.resolutionMs ?? 500;
    this.#manual = o.manual ?? false;
    this.now = this.#clock();
  }

  get size(): number {
    return this.#items.size;
  }

  add(x: Expiring): void {
    this.#items.add(x);
    if (this.#timer === undefined && !this.#manual) {
      this.now = this.#clock();
      this.#timer = setInterval(() => this.sweep(), this.#resolution);
      this.#timer.unref();
    }
  }

  delete(x: Expiring): void {
    this.#items.delete(x);
    if (this.#items.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Fires what is due at `now` (default: the clock). */
  sweep(now: number = this.#clock()): void {
    this.now = now;
    for (const x of this.#items) if (x.deadline <= now) x.expire(now);
  }
}

/** One registry per process unless a caller brings its own. */
let shared: Deadlines | undefined;
export function sharedDeadlines(): Deadlines {
  shared ??= new Deadlines();
  return shared;
}
