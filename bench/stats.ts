// Latency summaries. Everything in milliseconds; percentiles by the nearest-rank method, so a
// reported p99 is a latency some request really had.

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Summarises `samples` (sorted in place). An empty set gives NaN throughout. */
export function percentiles(samples: Float64Array | number[]): Percentiles {
  const sorted = samples instanceof Float64Array ? samples.sort() : Float64Array.from(samples).sort();
  const n = sorted.length;
  const rank = (q: number): number => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    p50: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    p999: rank(0.999),
    max: n === 0 ? NaN : sorted[n - 1]!,
    mean: n === 0 ? NaN : sum / n,
  };
}
