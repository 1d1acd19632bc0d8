import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FixedRateResult } from './fixed-rate.js';
import type { PathResult, Plan, ProxyResult, Saturation } from './measure.js';
import type { PathName } from './paths.js';
import { compare, formatReport, type BenchReport } from './report.js';
import { median, summarize, type Turn } from './rounds.js';
import { summarizeBulk, type BulkTurn } from './bulk-rounds.js';
import type { WorkloadName } from './workload.js';
import { BULK_PORT, judge, type BulkResult, type PeerReport } from './bulk.js';
import { DEFAULT_OPAQUE_PORTS } from '../contract/sidecar.js';

const saturation = (rps: number): Saturation => ({
  tool: 'wrk', requests: rps * 10, rps, latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 },
  non2xx: 0, errors: 0, errorDetail: '', cpuBusy: { load: 50, serve: 99 },
});
const fixed = (p50: number): FixedRateResult => {
  const lat = { count: 10_000, mean: p50, p50, p90: p50 * 2, p99: p50 * 4, p999: p50 * 8, max: p50 * 10 };
  return {
    rate: 1000, durationS: 10, connections: 10, scheduled: 10_000, completed: 10_000, non2xx: 0, errors: 0, timeouts: 0,
    achievedRps: 1000, latencyMs: lat, serviceMs: lat, sendLagMs: { ...lat, p50: 0, p99: 0.1 }, over1msBySecond: new Array(10).fill(0), startedAtMs: 0,
  };
};
// The realistic workload: a tenth of the tiny one's throughput, three times its CPU per request.
const proxy = (side: 'client' | 'server', cpuUs: number, rssMb: number): ProxyResult => ({
  side, pid: 1,
  cpuUsPerRequest: { tiny: { h1: cpuUs, h2: cpuUs / 2 }, realistic: { h1: cpuUs * 3, h2: cpuUs * 1.5 } },
  started: { rssMb: rssMb * 0.6, hwmMb: rssMb }, idle: { rssMb: rssMb * 0.4, hwmMb: rssMb },
  loaded: { rssMb, hwmMb: rssMb }, settled: { rssMb: rssMb * 0.75, hwmMb: rssMb }, held: { rssMb: rssMb * 2, hwmMb: rssMb * 2 },
});
const path = (name: PathName, rps: number, p50: number, proxies: ProxyResult[], realisticRps = rps / 10): PathResult => ({
  name, description: name,
  saturation: {
    tiny: { h1: saturation(rps), h2: saturation(rps * 2) },
    realistic: { h1: saturation(realisticRps), h2: saturation(realisticRps * 2) },
  },
  fixed: fixed(p50), proxies, foreignCpuPercent: {}, stealPercent: {}, problems: [],
});

const paths = [
  path('direct', 100_000, 0.2, []),
  path('mesh', 5_000, 1.2, [proxy('client', 80, 90), proxy('server', 60, 70)], 400),
  path('haproxy-mtls', 20_000, 0.5, [proxy('client', 20, 20), proxy('server', 15, 20)]),
];

const plan = (workloads: WorkloadName[]): Plan => ({
  durationS: 10, warmupS: 2, connections: 50, h2Clients: 10, h2Streams: 10, rate: 1000, rateConnections: 10, rateWarmupS: 10,
  idleConnections: 1000, workloads, quietWaitS: 0, settleS: 30, bulkBytes: 1024 * 1048576,
});
const reportOf = (ps: PathResult[], workloads: WorkloadName[]): BenchReport => ({
  startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z', argv: [], pinning: 'p', tools: {},
  git: { commit: '0123456789abcdef', dirty: false }, plan: plan(workloads), paths: ps, ...compare(ps),
});

/** Only the runs of `workloads`, as a bench run with --workload would have measured them. */
const only = (p: PathResult, workloads: WorkloadName[]): PathResult => ({
  ...p,
  saturation: Object.fromEntries(workloads.map((w) => [w, p.saturation[w]])),
  proxies: p.proxies.map((x) => ({ ...x, cpuUsPerRequest: Object.fromEntries(workloads.map((w) => [w, x.cpuUsPerRequest[w]])) })),
});

describe('compare', () => {
  it('puts the mesh beside HAProxy doing mTLS: throughput, latency, CPU and RSS per proxy', () => {
    const { ratios, addedVsDirect } = compare(paths);
    assert.deepEqual(Object.keys(ratios), ['mesh/direct', 'mesh/haproxy-mtls', 'haproxy-mtls/direct']);
    const r = ratios['mesh/haproxy-mtls']!;
    const tiny = r.workloads.tiny!;
    assert.equal(tiny.h1Rps, 0.25);
    assert.equal(tiny.h2Rps, 0.25);
    assert.ok(Math.abs(r.fixedDeltaMs.p50 - 0.7) < 1e-9);
    assert.equal(tiny.cpuPerRequest!.h1, 70 / 17.5);
    assert.equal(r.rss!.loaded, 4);
    assert.equal(r.rss!.settled, 4);
    assert.equal(r.rss!.held, 4);
    // Against direct there are no proxies to compare.
    assert.equal(ratios['mesh/direct']!.workloads.tiny!.cpuPerRequest, undefined);
    assert.equal(ratios['mesh/direct']!.rss, undefined);
    assert.ok(Math.abs(addedVsDirect.mesh!.p50 - 1) < 1e-9);
  });

  it('compares each workload on its own: throughput and CPU per request', () => {
    const r = compare(paths).ratios['mesh/haproxy-mtls']!;
    assert.deepEqual(Object.keys(r.workloads), ['tiny', 'realistic']);
    const realistic = r.workloads.realistic!;
    assert.equal(realistic.h1Rps, 400 / 2_000);
    assert.equal(realistic.h2Rps, 800 / 4_000);
    assert.equal(realistic.cpuPerRequest!.h1, (70 * 3) / (17.5 * 3));
    assert.equal(realistic.cpuPerRequest!.h2, (35 * 1.5) / (8.75 * 1.5));
  });

  it('leaves out a workload that one of the two paths did not run', () => {
    const ps = [only(paths[0]!, ['tiny', 'realistic']), only(paths[1]!, ['realistic']), only(paths[2]!, ['tiny', 'realistic'])];
    const { ratios } = compare(ps);
    assert.deepEqual(Object.keys(ratios['mesh/haproxy-mtls']!.workloads), ['realistic']);
    assert.deepEqual(Object.keys(ratios['haproxy-mtls/direct']!.workloads), ['tiny', 'realistic']);
  });
});

describe('opaque bulk', () => {
  const bulk = (mbPerS: number, intact = true): BulkResult => ({ bytes: 2 ** 30, ms: (2 * 2 ** 30) / 1e3 / mbPerS, mbPerS, intact, ...(intact ? {} : { problem: 'digest differs' }) });
  const withBulk = [
    { ...paths[0]!, bulk: bulk(2000) },
    { ...paths[1]!, bulk: bulk(1300), proxies: paths[1]!.proxies.map((p, i) => ({ ...p, bulkCpuMsPerGiB: [900, 700][i] })) },
    { ...paths[2]!, bulk: bulk(1500, false) },
  ];

  it('compares each path with direct, only when both arrived intact', () => {
    assert.deepEqual(compare(withBulk).bulkVsDirect, { mesh: 0.65 });
    assert.deepEqual(compare([{ ...withBulk[0]!, bulk: bulk(2000, false) }, withBulk[1]!]).bulkVsDirect, {});
  });

  it('prints a table: seconds, MB/s, the ratio, proxy CPU per GiB, intact', () => {
    const text = formatReport(reportOf(withBulk, ['tiny']));
    assert.match(text, /^PATH +SECONDS +MB\/S +VS DIRECT +CPU MS\/GIB CLIENT-SIDE +SERVER-SIDE +INTACT$/m);
    assert.match(text, /^direct +1\.07 +2000 +1\.00x +– +– +yes$/m);
    assert.match(text, /^mesh +1\.65 +1300 +0\.65x +900 +700 +yes$/m);
    assert.match(text, /^haproxy-mtls +1\.43 +1500 +– +– +– +NO$/m);
    assert.match(text, /^opaque bulk: 1024 MiB each way/m);
    assert.doesNotMatch(formatReport(reportOf(paths, ['tiny'])), /opaque bulk/);
  });

  it('judges two peers\' reports: bytes and digests both ways', () => {
    const c: PeerReport = { role: 'client', sent: 10, sentSha: 'a', received: 10, receivedSha: 'b', ms: 1000 };
    const sv: PeerReport = { role: 'server', sent: 10, sentSha: 'b', received: 10, receivedSha: 'a', ms: 990 };
    assert.deepEqual(judge(10, c, sv), { bytes: 10, ms: 1000, mbPerS: 20 / 1e6, intact: true });
    assert.match(judge(10, c, { ...sv, receivedSha: 'x' }).problem!, /^client to server: 10 of 10 bytes, digest differs$/);
    assert.match(judge(10, { ...c, received: 7 }, sv).problem!, /^server to client: 7 of 10 bytes$/);
    assert.equal(judge(10, c, { ...sv, error: 'ECONNRESET' }).intact, false);
  });

  it('uses a port the mesh treats as opaque by default', () => {
    assert.ok(DEFAULT_OPAQUE_PORTS.includes(BULK_PORT));
  });
});

describe('formatReport', () => {
  it('prints the ratios per workload, what is measured once per pair on its first row', () => {
    const text = formatReport(reportOf(paths, ['tiny', 'realistic']));
    assert.match(text, /^A\/B +WORKLOAD +H1 REQ\/S +H2 REQ\/S +CPU\/REQ H1 +CPU\/REQ H2 +1000\/S \+P50 +\+P99 +\+MAX +RSS LOADED +SETTLED +RSS 1000 CONNS$/m);
    assert.match(text, /^mesh\/haproxy-mtls +tiny +0\.25x +0\.25x +4\.00x +4\.00x +\+0\.700 +\+2\.80 +\+7\.00 +4\.00x +4\.00x +4\.00x$/m);
    assert.match(text, /^mesh\/haproxy-mtls +realistic +0\.20x +0\.20x +4\.00x +4\.00x$/m);
    assert.match(text, /^mesh\/direct +tiny +0\.05x +0\.05x +– +– .* – +–$/m);
    assert.match(text, /^mesh\/direct +realistic +0\.04x +0\.04x +– +–$/m);
  });

  it('prints each path\'s throughput per workload, the fixed-rate run once', () => {
    const text = formatReport(reportOf(paths, ['tiny', 'realistic']));
    assert.match(text, /^PATH +WORKLOAD +H1 REQ\/S +H1 P50 +H1 P99 +H2 REQ\/S +H2 P50 +H2 P99 +1000\/S P50 +P99 +MAX +\+P50 +\+P99 +\+MAX +RUN$/m);
    assert.match(text, /^mesh +tiny +5000 +1\.00 +3\.00 +10000 +1\.00 +3\.00 +1\.20 +4\.80 +12\.0 +\+1\.00 +\+4\.00 +\+10\.0 +ok$/m);
    assert.match(text, /^mesh +realistic +400 +1\.00 +3\.00 +800 +1\.00 +3\.00 +ok$/m);
    assert.match(text, /^workload tiny: GET \/ /m);
    assert.match(text, /^workload realistic: GET \/api\/v1\/items\.json with 11 more headers \(\d+ bytes/m);
  });

  it('prints CPU per request per workload in the memory table', () => {
    const text = formatReport(reportOf(paths, ['tiny', 'realistic']));
    assert.match(text, /^PATH +PROXY +CPU µS\/REQ TINY H1 +TINY H2 +REALISTIC H1 +REALISTIC H2 +RSS STARTED +IDLE +LOADED +SETTLED +PEAK +1000 CONNS +KB\/CONN$/m);
    // Started (just up) and idle (at rest a while on) apart.
    assert.match(text, /^mesh +client +80\.0 +40\.0 +240\.0 +120\.0 +54\.0 +36\.0 +90\.0 +67\.5 +90\.0 +180\.0 OVER +–$/m);
  });

  it('with one workload, prints only its rows and columns', () => {
    const text = formatReport(reportOf(paths.map((p) => only(p, ['realistic'])), ['realistic']));
    assert.doesNotMatch(text, /^\S+ +tiny /m);
    assert.doesNotMatch(text, /TINY H1/);
    assert.match(text, /^mesh\/haproxy-mtls +realistic +0\.20x +0\.20x +4\.00x +4\.00x +\+0\.700 /m);
    assert.match(text, /^PATH +PROXY +CPU µS\/REQ REALISTIC H1 +REALISTIC H2 +RSS STARTED +IDLE/m);
  });

  it('flags a generator-bound run with its workload', () => {
    const busy = structuredClone(paths);
    busy[0]!.saturation.realistic!.h1!.cpuBusy.load = 97;
    const text = formatReport(reportOf(busy, ['tiny', 'realistic']));
    assert.match(text, /^direct: realistic H1 load CPU 97 %: the generator, not the path, limited throughput/m);
  });

  it('shows each path\'s fixed-rate requests over 1 ms by second, and nothing for a path with none', () => {
    const slow = structuredClone(paths);
    slow[1]!.fixed!.over1msBySecond = [3, 2, 140, 60, 4, 0, 1, 2, 3, 1];
    const text = formatReport(reportOf(slow, ['tiny']));
    assert.match(text, new RegExp(`^${slow[1]!.name}: fixed-rate requests over 1 ms, by second: 3 2 140 60 4 0 1 2 3 1$`, 'm'));
    assert.doesNotMatch(text, new RegExp(`^${slow[0]!.name}: fixed-rate requests over 1 ms`, 'm'));
  });

  it('shows the fixed-rate warm-up apart: its percentiles and its seconds over 1 ms, under the plan\'s length', () => {
    const warm = paths.map((p) => ({ ...p, fixed: { ...p.fixed! } }));
    const lat = { count: 10_000, mean: 1, p50: 0.5, p90: 1, p99: 4.25, p999: 9, max: 18.5 };
    warm[1]!.fixed!.warmup = { seconds: 10, latencyMs: lat, over1msBySecond: [50, 120, 210, 80, 30, 12, 9, 8, 10, 7] };
    const text = formatReport(reportOf(warm, ['tiny', 'realistic']));
    assert.match(text, /fixed rate: 1000 req\/s for 10s \(after 10s at the rate, reported apart\)/);
    assert.match(text, new RegExp(`^${warm[1]!.name}: fixed-rate warm-up, the 10s right after the saturating runs: p50 0\\.500 p99 4\\.25 max 18\\.5 ms; over 1 ms by second: 50 120 210 80 30 12 9 8 10 7$`, 'm'));
    assert.doesNotMatch(text, new RegExp(`^${warm[0]!.name}: fixed-rate warm-up`, 'm'));
  });
});

describe('head to head (turns)', () => {
  const turn = (path: PathName, h1Rps: number, h2Rps: number, cpu: number): Turn => ({ path, h1Rps, h2Rps, h1CpuUs: cpu, h2CpuUs: cpu / 2 });
  // Three rounds; the machine slows down in the second (both paths alike) and mesh has a bad turn in the third.
  const rounds: Array<[Turn, Turn]> = [
    [turn('mesh', 18_000, 28_000, 22), turn('haproxy-mtls', 30_000, 38_000, 11)],
    [turn('mesh', 12_000, 20_000, 33), turn('haproxy-mtls', 20_000, 26_000, 16)],
    [turn('mesh', 9_000, 27_000, 40), turn('haproxy-mtls', 29_000, 37_000, 12)],
  ];

  it('takes each round\'s ratio from its own two turns, and the median of the rounds', () => {
    const h = summarize('mesh', 'haproxy-mtls', 10, rounds);
    assert.deepEqual(h.ratios.h1Rps.map((x) => x.toFixed(3)), ['0.600', '0.600', '0.310']);
    assert.equal(h.median.h1Rps.toFixed(2), '0.60', 'the bad turn does not move the median; a slow machine in one round does not either');
    assert.equal(h.median.h2Rps.toFixed(3), (28 / 38).toFixed(3));
    assert.equal(h.median.h1Cpu.toFixed(2), '2.06');
    assert.equal(median([3, 1, 2, 4]), 2.5);
    assert.ok(Number.isNaN(median([NaN])));
  });

  it('prints the rounds and the median row after the ratios', () => {
    const r = { ...reportOf(paths, ['tiny', 'realistic']), headToHead: summarize('mesh', 'haproxy-mtls', 10, rounds) };
    const text = formatReport(r);
    assert.match(text, /^ROUND +mesh H1 +haproxy-mtls H1 +H1 RATIO +mesh H2 +haproxy-mtls H2 +H2 RATIO +CPU\/REQ H1 +CPU\/REQ H2$/m);
    assert.match(text, /^3 +9000 +29000 +0\.31x +27000 +37000 +0\.73x +3\.33x +3\.33x$/m);
    assert.match(text, /^median +0\.60x +0\.74x +2\.06x +2\.06x$/m);
    assert.ok(text.indexOf('ROUND') > text.indexOf('A/B'));
    assert.doesNotMatch(formatReport(reportOf(paths, ['tiny', 'realistic'])), /ROUND/, 'no rounds, no table');
  });
});

describe('bulk head to head (turns)', () => {
  const turn = (path: PathName, mbPerS: number, cpuMsPerGiB: number): BulkTurn => ({ path, mbPerS, cpuMsPerGiB });
  // Direct drifts from 320 to 260 MB/s over the rounds; the mesh follows it, and has one bad turn.
  const rounds: BulkTurn[][] = [
    [turn('direct', 320, NaN), turn('mesh', 192, 1300), turn('haproxy-tcp-mtls', 200, 1100)],
    [turn('direct', 260, NaN), turn('mesh', 156, 1350), turn('haproxy-tcp-mtls', 169, 1150)],
    [turn('direct', 300, NaN), turn('mesh', 120, 1900), turn('haproxy-tcp-mtls', 186, 1120)],
  ];

  it('takes each path\'s ratio over direct from the same round, and the median of the rounds', () => {
    const h = summarizeBulk(['direct', 'mesh', 'haproxy-tcp-mtls'], 1 << 30, rounds);
    assert.deepEqual(h.ratios.mesh!.map((x) => x.toFixed(2)), ['0.60', '0.60', '0.40']);
    assert.equal(h.median.mesh!.toFixed(2), '0.60', 'a drifting direct and one bad turn leave the median where the rounds agree');
    assert.equal(h.median['haproxy-tcp-mtls']!.toFixed(2), '0.63');
    assert.equal(h.ratios.direct, undefined, 'no ratio of direct over itself');
  });

  it('prints the rounds, each path\'s ratio and proxy CPU, and the median row, after the HTTP rounds', () => {
    const r = {
      ...reportOf(paths, ['tiny']),
      headToHead: summarize('mesh', 'haproxy-mtls', 10, [[{ path: 'mesh', h1Rps: 1, h2Rps: 1, h1CpuUs: 1, h2CpuUs: 1 }, { path: 'haproxy-mtls', h1Rps: 1, h2Rps: 1, h1CpuUs: 1, h2CpuUs: 1 }]]),
      bulkHeadToHead: summarizeBulk(['direct', 'mesh', 'haproxy-tcp-mtls'], 1 << 30, rounds),
    };
    const text = formatReport(r);
    assert.match(text, /^ROUND +direct MB\/S +mesh MB\/S +haproxy-tcp-mtls MB\/S +mesh\/direct +haproxy-tcp-mtls\/direct +mesh CPU MS\/GIB +haproxy-tcp-mtls CPU MS\/GIB$/m);
    assert.match(text, /^3 +300 +120 +186 +0\.40x +0\.62x +1900 +1120$/m);
    assert.match(text, /^median +0\.60x +0\.63x$/m);
    assert.ok(text.indexOf('bulk head to head') > text.indexOf('head to head: mesh'));
    assert.doesNotMatch(formatReport(reportOf(paths, ['tiny'])), /bulk head to head/, 'no rounds, no table');
  });
});
