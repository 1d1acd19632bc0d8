// Coarse deadlines for many connections without a timer each: one unref'd
// interval sweeps a Set of entries holding a plain deadline number. Arming or
// clearing a deadline is a field write, so a request costs no timer and
// 10,000 idle connections cost one Set and one sweep a tick.
// Many deadlines fall due in one sweep when many connections began together
// (500 slow clients answered 408 at once, thousands of idle keep-alives closed
// at their idle timeout): a sweep expires at most `perTurn` of them, then
// yields to I/O (setImmediate) and goes on where it stopped, so the other
// connections' reads and accepts run between the batches (measured: 500
// expiries in one turn held a fresh request ~40-60 ms).
import { performance } from 'node:perf_hooks';

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
  /** Expiries per event-loop turn before the sweep yields to I/O. Default 64; manual sweeps: all at once unless set. */
  perTurn?: number;
}

export class Deadlines {
  readonly #items = new Set<Expiring>();
  readonly #clock: () => number;
  readonly #resolution: number;
  readonly #manual: boolean;
  readonly #perTurn: number;
  #timer: NodeJS.Timeout | undefined;
  /** A sweep that yielded: where it goes on (the Set's iterator sees deletions and additions made meanwhile). */
  #cursor: IterableIterator<Expiring> | undefined;
  /** The clock as of the last sweep (or read), good enough to arm coarse deadlines without a clock call. */
  now: number;

  constructor(o: DeadlinesOptions = {}) {
    this.#clock = o.clock ?? (() => performance.now());
    this.#resolution = o.resolutionMs ?? 500;
    this.#manual = o.manual ?? false;
    this.#perTurn = o.perTurn ?? (this.#manual ? Infinity : 64);
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

  /**
   * Fires what is due at `now` (default: the clock), `perTurn` at a time. A sweep due while
   * an earlier one is still going on only moves `now` forward: the one going on reaches
   * every entry.
   */
  sweep(now: number = this.#clock()): void {
    this.now = now;
    if (this.#cursor !== undefined) return;
    this.#cursor = this.#items.values();
    this.#run();
  }

  /** True while a sweep has yielded and is to go on. */
  get sweeping(): boolean {
    return this.#cursor !== undefined;
  }

  readonly #run = (): void => {
    const cursor = this.#cursor!;
    const now = this.now;
    let fired = 0;
    let more = false;
    try {
      for (let r = cursor.next(); !r.done; r = cursor.next()) {
        const x = r.value;
        if (x.deadline > now) continue;
        x.expire(now);
        if (++fired >= this.#perTurn) {
          more = true;
          setImmediate(this.#run);
          return;
        }
      }
    } finally {
      // An expire() that throws must not leave every later sweep waiting for this one.
      if (!more) this.#cursor = undefined;
    }
  };
}

/** One registry per process unless a caller brings its own. */
let shared: Deadlines | undefined;
export function sharedDeadlines(): Deadlines {
  shared ??= new Deadlines();
  return shared;
}
