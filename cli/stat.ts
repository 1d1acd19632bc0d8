// Summarizes proxies' metrics the way `linkerd viz stat` does: per workload,
// success rate, request rate, latency percentiles and open TCP connections.
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

const sum = (samples: Sample[], name: string, match: (l: Record<string, string>) => boolean): number =>
  samples.filter((s) => s.name === name && match(s.labels)).reduce((t, s) => t + s.value, 0);

/** One row from one proxy's /metrics text, counting its inbound side (what the workload served). */
export function statRow(name: string, metricsText: string, windowSeconds?: number): StatRow {
  const samples = parseMetrics(metricsText);
  const inbound = (l: Record<string, string>): boolean => l.direction === 'inbound';
  const responses = sum(samples, 'response_total', inbound);
  const ok = sum(samples, 'response_total', (l) => inbound(l) && l.classification === 'success');
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== 'response_latency_ms_bucket' || !inbound(s.labels)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const buckets = [...byLe].map(([le, count]) => ({ le, count }));
  return {
    name,
    meshed: '1/1',
    requests: responses,
    success: responses === 0 ? undefined : ok / responses,
    rps: windowSeconds === undefined || windowSeconds <= 0 || responses === 0 ? undefined : responses / windowSeconds,
    p50: histogramQuantile(0.5, buckets),
    p95: histogramQuantile(0.95, buckets),
    p99: histogramQuantile(0.99, buckets),
    tcpConn: sum(samples, 'tcp_open_connections', inbound),
  };
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
