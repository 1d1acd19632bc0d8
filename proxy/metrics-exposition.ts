// Hands plain-number series to a prom-client Registry at scrape time. The
// request path never touches prom-client: it bumps numbers in these series,
// and the objects here turn them into the value lists prom-client's own
// Counter, Gauge and Histogram return from get(), so the Registry formats
// (escaping, `le` values, line order) exactly as it did for the real ones.
// The text of these series is written by ExpositionRegistry itself, in the
// same format: prom-client builds several objects and strings per line and
// escapes every label on every scrape, which for a proxy with 1,000
// destinations (7-8 MB of text) took ~100 ms of the event loop and grew RSS by
// ~100 MB per scrape (limits test, idle sessions); a series' labels never change,
// so their text is made once.
import { Buffer } from 'node:buffer';
import type { Metric, Registry as PromRegistry } from 'prom-client';
import { Registry } from './prom.js';

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

/** Prometheus text-format escaping, as prom-client does it (backslash and newline; quotes too in label values). */
const escapeText = (v: string): string => (v.includes('\\') || v.includes('\n') ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : v);
const escapeLabel = (v: string): string => {
  const e = escapeText(v);
  return e.includes('"') ? e.replace(/"/g, '\\"') : e;
};

/** `a="x",b="y"` for a label set, made once per set (label objects are never changed once a series has them). */
const labelTexts = new WeakMap<Labels, string>();
function labelText(labels: Labels): string {
  let t = labelTexts.get(labels);
  if (t === undefined) {
    t = '';
    for (const k in labels) t += `${t === '' ? '' : ','}${k}="${escapeLabel(labels[k]!)}"`;
    labelTexts.set(labels, t);
  }
  return t;
}

/** `le` values, made once per bucket layout: `${number}`, as prom-client prints them. */
const boundTexts = new WeakMap<Float64Array, string[]>();
function boundText(bounds: Float64Array): string[] {
  let t = boundTexts.get(bounds);
  if (t === undefined) boundTexts.set(bounds, (t = Array.from(bounds, (b) => `${b}`)));
  return t;
}

/** A sample's value as prom-client prints it ('Nan' is its spelling). */
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

/**
 * Text in pieces of about this many characters, each turned into bytes as it is cut: what is kept
 * until the response is written is flat bytes outside the heap, not a tree of line strings (which
 * outlived the young generation and grew the old space by tens of MB a scrape).
 */
const PIECE = 65536;

class Pieces {
  readonly done: Buffer[] = [];
  #cur = '';
  add(s: string): void {
    this.#cur += s;
    if (this.#cur.length >= PIECE) this.cut();
  }
  cut(): void {
    if (this.#cur !== '') this.done.push(Buffer.from(this.#cur, 'utf8'));
    this.#cur = '';
  }
}

class Flat implements Exposable {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge', private readonly samples: () => Iterable<Sample>) {}

  write(out: Pieces): void {
    const name = escapeText(this.name);
    for (const s of this.samples()) {
      const l = labelText(s.labels);
      out.add(l === '' ? `\n${name} ${valueText(s.value)}` : `\n${name}{${l}} ${valueText(s.value)}`);
    }
  }

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

  write(out: Pieces): void {
    const bucket = `\n${this.name}_bucket{le="`;
    for (const s of this.series()) {
      const l = labelText(s.labels);
      const tail = l === '' ? '"} ' : `",${l}} `;
      const le = boundText(s.bounds);
      let acc = 0;
      for (let i = 0; i < le.length; i++) {
        acc += s.counts[i]!;
        out.add(`${bucket}${le[i]}${tail}${valueText(acc)}`);
      }
      const braces = l === '' ? ' ' : `{${l}} `;
      out.add(`${bucket}+Inf${tail}${valueText(s.count)}\n${this.name}_sum${braces}${valueText(s.sum)}\n${this.name}_count${braces}${valueText(s.count)}`);
    }
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
function register(registry: PromRegistry, m: Exposable): void {
  registry.registerMetric(m as unknown as Metric);
}

export function exposeCounter(registry: PromRegistry, name: string, help: string, samples: () => Iterable<Sample>): void {
  register(registry, new Flat(name, help, 'counter', samples));
}

export function exposeGauge(registry: PromRegistry, name: string, help: string, samples: () => Iterable<Sample>): void {
  register(registry, new Flat(name, help, 'gauge', samples));
}

export function exposeHistogram(registry: PromRegistry, name: string, help: string, series: () => Iterable<Buckets>): void {
  register(registry, new Histogram(name, help, series));
}

/**
 * A prom-client Registry whose metrics() writes the series above itself, in prom-client's text
 * format, line for line; metrics registered the ordinary way (process, identity) are formatted by
 * prom-client as before. With default labels or OpenMetrics, prom-client formats everything.
 */
export class ExpositionRegistry extends Registry {
  #defaults = false;

  override setDefaultLabels(labels: object): void {
    this.#defaults = Object.keys(labels).length > 0;
    super.setDefaultLabels(labels);
  }

  /** The exposition, UTF-8, in pieces of ~64 KB, for a response to write one at a time. */
  async pieces(): Promise<Buffer[]> {
    if (this.#defaults || this.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) return [Buffer.from(await super.metrics(), 'utf8')];
    const out = new Pieces();
    let first = true;
    for (const m of this.getMetricsAsArray() as unknown[]) {
      if (!first) out.add('\n\n');
      first = false;
      if (m instanceof Flat || m instanceof Histogram) {
        out.add(`# HELP ${escapeText(m.name)} ${escapeText(m.help)}\n# TYPE ${escapeText(m.name)} ${m.type}`);
        m.write(out);
      } else {
        out.add(await this.getSingleMetricAsString((m as { name: string }).name));
      }
    }
    out.add('\n');
    out.cut();
    return out.done;
  }

  override async metrics(): Promise<string> {
    return Buffer.concat(await this.pieces()).toString('utf8');
  }
}
