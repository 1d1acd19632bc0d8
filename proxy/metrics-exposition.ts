// Hands plain-number series to a prom-client Registry at scrape time. The
// request path never touches prom-client: it bumps numbers in these series,
// and the objects here turn them into the value lists prom-client's own
// Counter, Gauge and Histogram return from get(), so the Registry formats
// (escaping, `le` values, line order) exactly as it did for the real ones.
import type { Metric, Registry } from 'prom-client';

export type Labels = Record<string, string>;

/** One counter or gauge series. The array it sits in keeps creation order, as prom-client's hash map did. */
export interface Sample {
  readonly labels: Labels;
  value: number;
}

/** One histogram series: per-bucket (not cumulative) counts, as observations fall. */
export class Buckets {
  /** Float64, not Uint32: a busy route passes 2^32 requests; doubles count exactly to 2^53. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly labels: Labels, readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    // A clock bug (NaN, Infinity) must neither fail the request nor poison the sum forever.
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    let i = 0;
    // Linear, not binary: most latencies fall in the first few buckets. `le` is inclusive.
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

interface Exposable {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: 'sum';
}

class Flat implements Exposable {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge', private readonly samples: () => Iterable<Sample>) {}

  async get() {
    // Fresh objects: getMetricsAsJSON with default labels reassigns `labels` on what it is given.
    const values = Array.from(this.samples(), (s) => ({ labels: s.labels, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

class Histogram implements Exposable {
  readonly aggregator = 'sum';
  readonly type = 'histogram';
  constructor(readonly name: string, readonly help: string, private readonly series: () => Iterable<Buckets>) {}

  /** What Registry.metrics() reads: `le` in labels, the series' labels shared, as prom-client's Histogram gives them. */
  async getForPromString() {
    const bucket = `${this.name}_bucket`;
    const values: Array<{ labels: Record<string, string | number>; sharedLabels: Labels; value: number; metricName: string }> = [];
    for (const s of this.series()) {
      let acc = 0;
      for (let i = 0; i < s.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: s.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** For getMetricsAsJSON: labels splayed into one object, `le` first, as prom-client does. */
  async get() {
    const data = await this.getForPromString();
    const values = data.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, metricName }));
    return { ...data, values };
  }
}

// The Registry only calls get()/getForPromString() and reads name and type; its
// typings want one of prom-client's classes, hence the single cast here.
function register(registry: Registry, m: Exposable): void {
  registry.registerMetric(m as unknown as Metric);
}

export function exposeCounter(registry: Registry, name: string, help: string, samples: () => Iterable<Sample>): void {
  register(registry, new Flat(name, help, 'counter', samples));
}

export function exposeGauge(registry: Registry, name: string, help: string, samples: () => Iterable<Sample>): void {
  register(registry, new Flat(name, help, 'gauge', samples));
}

export function exposeHistogram(registry: Registry, name: string, help: string, series: () => Iterable<Buckets>): void {
  register(registry, new Histogram(name, help, series));
}
