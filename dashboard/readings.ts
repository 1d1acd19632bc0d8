// A short history of each proxy's /metrics, so the dashboard can answer "what
// happened over the last window" at any moment instead of making the browser
// wait a window the way `mesh stat` does. A reading is kept parsed (and only
// the series stat needs), since every row and edge asks it again with another
// selector.
import type { Sample } from '../cli/prom-text.js';
import { parseMetrics } from '../cli/prom-text.js';

export interface Reading {
  /** ms, from the injected clock */
  at: number;
  samples: readonly Sample[];
}

/** The series stat rows and edges are made of; the rest of /metrics is dropped on arrival. */
const KEPT = new Set(['response_total', 'response_latency_ms_bucket', 'tcp_open_connections']);

export function readingOf(text: string, at: number): Reading {
  return { at, samples: parseMetrics(text).filter((s) => KEPT.has(s.name)) };
}

/**
 * One proxy's readings, oldest first. The oldest kept is the newest one at
 * least a window old, so the pair (oldest, newest) spans the whole window as
 * soon as the history is that long. Readings closer together than a slot
 * (window / SLOTS) replace each other: a long window costs SLOTS readings,
 * not window / scrape interval.
 */
export class ReadingRing {
  static readonly SLOTS = 16;
  readonly #readings: Reading[] = [];

  constructor(private readonly windowMs: number) {}

  add(r: Reading): void {
    const rs = this.#readings;
    // The newest is always kept; it replaces the previous newest when that one is within a slot of the one before it.
    const slot = this.windowMs / ReadingRing.SLOTS;
    if (rs.length >= 2 && rs[rs.length - 1]!.at - rs[rs.length - 2]!.at < slot) rs.pop();
    rs.push(r);
    while (rs.length > 2 && r.at - rs[1]!.at >= this.windowMs) rs.shift();
  }

  /** The window's two ends, or undefined before there are two readings. */
  span(): { first: Reading; last: Reading } | undefined {
    const rs = this.#readings;
    return rs.length < 2 ? undefined : { first: rs[0]!, last: rs[rs.length - 1]! };
  }

  latest(): Reading | undefined {
    return this.#readings.at(-1);
  }

  get size(): number {
    return this.#readings.length;
  }
}
