// Summarizes proxies' metrics the way `linkerd viz stat` does: per workload,
// success rate, request rate, latency percentiles and open TCP connections.
// Two ways to get there, the same numbers: counters read from each proxy's
// /metrics at the start and the end of a window (their difference is what the
// window saw), or PromQL over the same series in a Prometheus server.
import { histogramQuantile, parseMetrics, type Sample } from './prom-text.js';

export interface StatRow {
  name: string;
  meshed: string;
  requests: number;
  success: number | undefined;
  rps: number | undefined;
  p50: number | undefined;
  p95: number | undefined;
  p99: number | undefined;
  tcpConn: number;
}

/** Which series a row counts: a workload's inbound side by default; edges narrow it. */
export interface Selector {
  direction: 'inbound' | 'outbound';
  /** --to: outbound requests whose target address is one of these hosts. */
  toHosts?: ReadonlySet<string>;
  /** --from: inbound requests whose client proved one of these identities. */
  fromIdentities?: ReadonlySet<string>;
}

export const INBOUND: Selector = { direction: 'inbound' };

export function hostOf(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const i = addr.lastIndexOf(':');
  return i < 0 ? addr : addr.slice(0, i);
}

export function selects(sel: Selector, l: Record<string, string>): boolean {
  if (l.direction !== sel.direction) return false;
  if (sel.toHosts !== undefined && !sel.toHosts.has(hostOf(l.target_addr ?? ''))) return false;
  if (sel.fromIdentities !== undefined && !sel.fromIdentities.has(l.client_id ?? '')) return false;
  return true;
}

/** What one scrape of one proxy says, summed over the selected series. */
export interface Totals {
  responses: number;
  success: number;
  /** Cumulative latency histogram: le → count. */
  buckets: Map<number, number>;
  tcpOpen: number;
}

export function emptyTotals(): Totals {
  return { responses: 0, success: 0, buckets: new Map(), tcpOpen: 0 };
}

export function totalsOf(metricsText: string, sel: Selector = INBOUND): Totals {
  return totalsOfSamples(parseMetrics(metricsText), sel);
}

/** The same from samples already parsed (the dashboard parses a reading once and asks it many selectors). */
export function totalsOfSamples(samples: readonly Sample[], sel: Selector = INBOUND): Totals {
  const t = emptyTotals();
  addSamples(t, samples, sel);
  return t;
}

function addSamples(t: Totals, samples: readonly Sample[], sel: Selector): void {
  for (const s of samples) {
    if (!selects(sel, s.labels)) continue;
    switch (s.name) {
      case 'response_total':
        t.responses += s.value;
        if (s.labels.classification === 'success') t.success += s.value;
        break;
      case 'response_latency_ms_bucket': {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value);
        break;
      }
      case 'tcp_open_connections':
        t.tcpOpen += s.value;
        break;
    }
  }
}

/** Sums totals of several proxies (a deployment's pods). */
export function sumTotals(list: readonly Totals[]): Totals {
  const t = emptyTotals();
  for (const x of list) {
    t.responses += x.responses;
    t.success += x.success;
    t.tcpOpen += x.tcpOpen;
    for (const [le, n] of x.buckets) t.buckets.set(le, (t.buckets.get(le) ?? 0) + n);
  }
  return t;
}

/** What happened between two scrapes (a proxy that restarted meanwhile counts from zero). */
export function windowOf(before: Totals, after: Totals): Totals {
  const reset = after.responses < before.responses;
  const base = reset ? emptyTotals() : before;
  const buckets = new Map<number, number>();
  for (const [le, n] of after.buckets) buckets.set(le, Math.max(0, n - (base.buckets.get(le) ?? 0)));
  return { responses: after.responses - base.responses, success: after.success - base.success, buckets, tcpOpen: after.tcpOpen };
}

export function rowOf(name: string, meshed: string, t: Totals, windowSeconds: number | undefined): StatRow {
  const buckets = [...t.buckets].map(([le, count]) => ({ le, count }));
  return {
    name,
    meshed,
    requests: t.responses,
    success: t.responses === 0 ? undefined : t.success / t.responses,
    rps: windowSeconds === undefined || windowSeconds <= 0 ? undefined : t.responses / windowSeconds,
    p50: histogramQuantile(0.5, buckets),
    p95: histogramQuantile(0.95, buckets),
    p99: histogramQuantile(0.99, buckets),
    tcpConn: t.tcpOpen,
  };
}

/** One row from one proxy's /metrics text since it started, counting its inbound side (what the workload served). */
export function statRow(name: string, metricsText: string, windowSeconds?: number): StatRow {
  return rowOf(name, '1/1', totalsOf(metricsText), windowSeconds);
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`);

export function statCells(r: StatRow): string[] {
  return [
    r.name,
    r.meshed,
    r.success === undefined ? '-' : `${(r.success * 100).toFixed(2)}%`,
    r.rps === undefined ? '-' : `${r.rps.toFixed(1)}rps`,
    ms(r.p50),
    ms(r.p95),
    ms(r.p99),
    String(r.tcpConn),
  ];
}

export const statHeaders = ['NAME', 'MESHED', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', 'TCP_CONN'];

// ── PromQL: the same row from a Prometheus server ──────────────────────────

const quote = (s: string): string => s.replace(/[\\"]/g, (c) => `\\${c}`);
/** A regex matching exactly these strings (escaped once here, once more by quote() for the PromQL string). */
const alternatives = (xs: Iterable<string>): string => [...xs].map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');

/**
 * The label matchers for a row's series. Prometheus must attach `namespace`
 * and `pod` to each proxy's target (the demo's scrape config does; in a
 * cluster, kubernetes_sd relabelling does), as linkerd-viz's does.
 */
export function promMatchers(namespace: string, pods: readonly string[], sel: Selector): string {
  const m = [`direction="${sel.direction}"`, `namespace="${quote(namespace)}"`, `pod=~"${quote(alternatives(pods))}"`];
  if (sel.toHosts !== undefined) m.push(`target_addr=~"${quote([...sel.toHosts].map((h) => `${alternatives([h.includes(':') ? `[${h}]` : h])}:[0-9]+`).join('|'))}"`);
  if (sel.fromIdentities !== undefined) m.push(`client_id=~"${quote(alternatives(sel.fromIdentities))}"`);
  return m.join(',');
}

/**
 * The queries behind one row, for a window like "1m". Counts are the counter
 * now minus the counter a window ago (`offset`), not increase(): increase()
 * extrapolates to the window's edges, so 100 requests read as 100.8; a series
 * that did not exist a window ago counts from zero, which is exact for a proxy
 * that started within the window.
 */
export function promQueries(matchers: string, window: string): Record<'responses' | 'responsesBefore' | 'success' | 'successBefore' | 'p50' | 'p95' | 'p99' | 'tcp', string> {
  const q = (p: number): string => `histogram_quantile(${p}, sum by (le) (rate(response_latency_ms_bucket{${matchers}}[${window}])))`;
  const ok = `${matchers},classification="success"`;
  return {
    responses: `sum(response_total{${matchers}})`,
    responsesBefore: `sum(response_total{${matchers}} offset ${window})`,
    success: `sum(response_total{${ok}})`,
    successBefore: `sum(response_total{${ok}} offset ${window})`,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    tcp: `sum(tcp_open_connections{${matchers}})`,
  };
}
