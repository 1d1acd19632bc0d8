import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FixedRateResult } from './fixed-rate.js';
import type { PathResult, Plan, ProxyResult, Saturation } from './measure.js';
import type { PathName } from './paths.js';
import { compare, formatReport, type BenchReport } from './report.js';

const saturation = (rps: number): Saturation => ({
  tool: 'wrk', requests: rps * 10, rps, latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 },
  non2xx: 0, errors: 0, errorDetail: '', cpuBusy: { load: 50, serve: 99 },
});
const fixed = (p50: number): FixedRateResult => {
  const lat = { count: 10_000, mean: p50, p50, p90: p50 * 2, p99: p50 * 4, p999: p50 * 8, max: p50 * 10 };
  return {
    rate: 1000, durationS: 10, connections: 10, scheduled: 10_000, completed: 10_000, non2xx: 0, errors: 0, timeouts: 0,
    achievedRps: 1000, latencyMs: lat, serviceMs: lat, sendLagMs: { ...lat, p50: 0, p99: 0.1 },
  };
};
const proxy = (side: 'client' | 'server', cpuUs: number, rssMb: number): ProxyResult => ({
  side, pid: 1, cpuUsPerRequest: { h1: cpuUs, h2: cpuUs / 2 },
  loaded: { rssMb, hwmMb: rssMb }, held: { rssMb: rssMb * 2, hwmMb: rssMb * 2 },
});
const path = (name: PathName, rps: number, p50: number, proxies: ProxyResult[]): PathResult => ({
  name, description: name, h1: saturation(rps), h2: saturation(rps * 2), fixed: fixed(p50), proxies,
  foreignCpuPercent: {}, stealPercent: {}, problems: [],
});

const paths = [
  path('direct', 100_000, 0.2, []),
  path('mesh', 5_000, 1.2, [proxy('client', 80, 90), proxy('server', 60, 70)]),
  path('haproxy-mtls', 20_000, 0.5, [proxy('client', 20, 20), proxy('server', 15, 20)]),
];

describe('compare', () => {
  it('puts the mesh beside HAProxy doing mTLS: throughput, latency, CPU and RSS per proxy', () => {
    const { ratios, addedVsDirect } = compare(paths);
    assert.deepEqual(Object.keys(ratios), ['mesh/direct', 'mesh/haproxy-mtls', 'haproxy-mtls/direct']);
    const r = ratios['mesh/haproxy-mtls']!;
    assert.equal(r.h1Rps, 0.25);
    assert.equal(r.h2Rps, 0.25);
    assert.ok(Math.abs(r.fixedDeltaMs.p50 - 0.7) < 1e-9);
    assert.equal(r.cpuPerRequest!.h1, 70 / 17.5);
    assert.equal(r.rss!.loaded, 4);
    assert.equal(r.rss!.held, 4);
    // Against direct there are no proxies to compare.
    assert.equal(ratios['mesh/direct']!.cpuPerRequest, undefined);
    assert.ok(Math.abs(addedVsDirect.mesh!.p50 - 1) < 1e-9);
  });

  it('prints the ratios as a table', () => {
    const plan: Plan = { durationS: 10, warmupS: 2, connections: 50, h2Clients: 10, h2Streams: 10, rate: 1000, rateConnections: 10, idleConnections: 1000, quietWaitS: 0 };
    const report: BenchReport = {
      startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z', argv: [], pinning: 'p', tools: {},
      git: { commit: '0123456789abcdef', dirty: false }, plan, paths, ...compare(paths),
    };
    const text = formatReport(report);
    assert.match(text, /^A\/B +H1 REQ\/S +H2 REQ\/S +1000\/S \+P50 +\+P99 +\+MAX +CPU\/REQ H1 +CPU\/REQ H2 +RSS LOADED +RSS 1000 CONNS$/m);
    assert.match(text, /^mesh\/haproxy-mtls +0\.25x +0\.25x +\+0\.700 +\+2\.80 +\+7\.00 +4\.00x +4\.00x +4\.00x +4\.00x$/m);
    assert.match(text, /^mesh\/direct +0\.05x +0\.05x .* – +– +– +–$/m);
  });
});
