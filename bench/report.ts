// Turns path results into comparisons (ratios, latency added over direct) and into the text
// the bench prints. Pure: the results file and the tables come from the same object.
import { isNoisy, otherWorkPercent as outside, RSS_TARGET_MB, type PathResult, type Plan } from './measure.js';
import type { PathName } from './paths.js';

export interface Added {
  p50: number;
  p99: number;
  max: number;
}

export interface Ratio {
  /** a's saturation throughput over b's (HTTP/1.1 and h2c). */
  h1Rps: number;
  h2Rps: number;
  /** a's fixed-rate latency minus b's, ms. */
  fixedDeltaMs: Added;
  /** a's CPU time per request per proxy over b's (the mean of each path's proxies); when both have proxies. */
  cpuPerRequest?: { h1: number; h2: number };
  /** a's RSS per proxy over b's, after load and with the idle connections held; when both have proxies. */
  rss?: { loaded: number; held: number };
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  argv: string[];
  pinning: string;
  tools: Record<string, string>;
  git: { commit: string; dirty: boolean };
  plan: Plan;
  paths: PathResult[];
  /** Fixed-rate latency each path adds over direct, ms. */
  addedVsDirect: Partial<Record<PathName, Added>>;
  /** Keyed "a/b", e.g. "mesh/haproxy". */
  ratios: Record<string, Ratio>;
}

/** Which comparisons are printed, when both paths were measured. */
const PAIRS: [PathName, PathName][] = [
  ['mesh', 'direct'],
  // Like for like first: HAProxy doing mTLS between its two instances, as the mesh does.
  ['mesh', 'haproxy-mtls'],
  ['mesh', 'haproxy-mtls-h1'],
  ['mesh', 'haproxy-tcp-mtls'],
  ['mesh', 'haproxy'],
  ['mesh', 'haproxy-tcp'],
  // What mTLS costs the mesh, and what it costs HAProxy.
  ['mesh', 'mesh-plain'],
  ['haproxy-mtls', 'haproxy'],
  ['haproxy-tcp-mtls', 'haproxy-tcp'],
  ['mesh-plain', 'direct'],
  ['mesh-plain', 'haproxy'],
  ['mesh-plain', 'haproxy-tcp'],
  ['haproxy-mtls', 'direct'],
  ['haproxy-mtls-h1', 'direct'],
  ['haproxy-tcp-mtls', 'direct'],
  ['haproxy', 'direct'],
  ['haproxy-tcp', 'direct'],
];

/** The mean over a path's proxies, NaN when it has none (or none measured it). */
function perProxy(p: PathResult, value: (x: PathResult['proxies'][number]) => number | undefined): number {
  const vs = p.proxies.map(value).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return vs.length === 0 ? NaN : vs.reduce((a, b) => a + b, 0) / vs.length;
}

export function compare(paths: PathResult[]): Pick<BenchReport, 'addedVsDirect' | 'ratios'> {
  const by = new Map(paths.map((p) => [p.name, p]));
  const delta = (a: PathResult, b: PathResult): Added | undefined =>
    a.fixed && b.fixed
      ? {
          p50: a.fixed.latencyMs.p50 - b.fixed.latencyMs.p50,
          p99: a.fixed.latencyMs.p99 - b.fixed.latencyMs.p99,
          max: a.fixed.latencyMs.max - b.fixed.latencyMs.max,
        }
      : undefined;
  const addedVsDirect: BenchReport['addedVsDirect'] = {};
  const direct = by.get('direct');
  if (direct) {
    for (const p of paths) {
      const d = p.name === 'direct' ? undefined : delta(p, direct);
      if (d) addedVsDirect[p.name] = d;
    }
  }
  const ratios: Record<string, Ratio> = {};
  for (const [a, b] of PAIRS) {
    const pa = by.get(a);
    const pb = by.get(b);
    const d = pa && pb ? delta(pa, pb) : undefined;
    if (!pa?.h1 || !pb?.h1 || !pa.h2 || !pb.h2 || !d) continue;
    const r: Ratio = { h1Rps: pa.h1.rps / pb.h1.rps, h2Rps: pa.h2.rps / pb.h2.rps, fixedDeltaMs: d };
    if (pa.proxies.length > 0 && pb.proxies.length > 0) {
      const over = (value: (x: PathResult['proxies'][number]) => number | undefined): number => perProxy(pa, value) / perProxy(pb, value);
      r.cpuPerRequest = { h1: over((x) => x.cpuUsPerRequest.h1), h2: over((x) => x.cpuUsPerRequest.h2) };
      r.rss = { loaded: over((x) => x.loaded?.rssMb), held: over((x) => x.held?.rssMb) };
    }
    ratios[`${a}/${b}`] = r;
  }
  return { addedVsDirect, ratios };
}

export function formatReport(r: BenchReport): string {
  const sections = [header(r), throughput(r), notes(r), memory(r), cpu(r), ratios(r), problems(r)];
  return `${sections.filter((x) => x !== '').join('\n\n')}\n`;
}

function header(r: BenchReport): string {
  const p = r.plan;
  return [
    `mesh bench ${r.startedAt}  git ${r.git.commit.slice(0, 12)}${r.git.dirty ? ' (dirty tree)' : ''}`,
    r.pinning,
    `saturation: wrk -t1 -c${p.connections} -d${p.durationS}s (HTTP/1.1), h2load -t1 -c${p.h2Clients} -m${p.h2Streams} -D${p.durationS} (h2c); ` +
      `fixed rate: ${p.rate} req/s for ${p.durationS}s (after 1s unrecorded) over ${p.rateConnections} connections, latency from the scheduled send time; ` +
      `warm-up ${p.warmupS}s; ${p.idleConnections} idle connections for RSS`,
    '',
    ...r.paths.map((x) => `${x.name.padEnd(Math.max(...r.paths.map((p) => p.name.length)))}  ${x.description}`),
  ].join('\n');
}

function throughput(r: BenchReport): string {
  const added = (name: PathName): Added | undefined => r.addedVsDirect[name];
  return [
    table(
      ['PATH', 'H1 REQ/S', 'H1 P50', 'H1 P99', 'H2 REQ/S', 'H2 P50', 'H2 P99', `${r.plan.rate}/S P50`, 'P99', 'MAX', '+P50', '+P99', '+MAX', 'RUN'],
      r.paths.map((x) => [
        x.name,
        rps(x.h1?.rps),
        ms(x.h1?.latencyMs.p50),
        ms(x.h1?.latencyMs.p99),
        rps(x.h2?.rps),
        ms(x.h2?.latencyMs.p50),
        ms(x.h2?.latencyMs.p99),
        ms(x.fixed?.latencyMs.p50),
        ms(x.fixed?.latencyMs.p99),
        ms(x.fixed?.latencyMs.max),
        signed(added(x.name)?.p50),
        signed(added(x.name)?.p99),
        signed(added(x.name)?.max),
        x.problems.length > 0 ? 'ERRORS' : noisy(x) ? 'noisy' : 'ok',
      ]),
    ),
    'latencies in ms; +P50/+P99/+MAX: fixed-rate latency added over direct',
  ].join('\n');
}

/** What limits how far each path's numbers can be trusted, short of errors. */
function notes(r: BenchReport): string {
  const out: string[] = [];
  for (const x of r.paths) {
    for (const [proto, run] of [['H1', x.h1], ['H2', x.h2]] as const) {
      if (run && run.cpuBusy.load >= GENERATOR_BOUND_PERCENT) {
        out.push(
          `${x.name}: ${proto} load CPU ${num(run.cpuBusy.load, 0)} %: the generator, not the path, limited throughput; ` +
            `this req/s is a lower bound (ratios against it are upper bounds)`,
        );
      }
    }
    const lag = x.fixed?.sendLagMs.p99;
    if (lag !== undefined && lag > 1) {
      out.push(`${x.name}: fixed-rate requests left up to ${ms(lag)} ms late (p99): the generator was starved of CPU or all its connections were busy`);
    }
  }
  const loud = r.paths.filter(noisy);
  if (loud.length > 0) {
    out.push(
      `noisy: other work took up to ${loud.map((x) => `${num(outside(x), 0)} %`).join(', ')} of the machine ` +
        `during ${loud.map((x) => x.name).join(', ')}; those numbers are not comparable with a quiet run`,
    );
  }
  return out.join('\n');
}

function memory(r: BenchReport): string {
  const p = r.plan;
  const rows: string[][] = [];
  for (const x of r.paths) {
    const n = x.hold?.open ?? 0;
    for (const proxy of x.proxies) {
      const over = proxy.held && proxy.held.rssMb >= RSS_TARGET_MB;
      const perConn = proxy.held && proxy.loaded && n > 0 ? ((proxy.held.rssMb - proxy.loaded.rssMb) * 1024) / n : undefined;
      rows.push([
        x.name,
        proxy.side,
        num(proxy.cpuUsPerRequest.h1, 1),
        num(proxy.cpuUsPerRequest.h2, 1),
        num(proxy.idle?.rssMb, 1),
        num(proxy.loaded?.rssMb, 1),
        num(proxy.loaded?.hwmMb, 1),
        `${num(proxy.held?.rssMb, 1)}${over ? ' OVER' : ''}`,
        num(perConn, 1),
      ]);
    }
  }
  if (rows.length === 0) return '';
  return [
    table(['PATH', 'PROXY', 'CPU µS/REQ H1', 'H2', 'RSS IDLE', 'LOADED', 'PEAK', `${p.idleConnections} CONNS`, 'KB/CONN'], rows),
    `RSS in MB (VmRSS; PEAK is VmHWM after load); target < ${RSS_TARGET_MB} MB per proxy with ${p.idleConnections} connections`,
  ].join('\n');
}

function cpu(r: BenchReport): string {
  const busy = r.paths.filter((x) => x.h1 || x.h2);
  if (busy.length === 0) return '';
  return [
    table(
      ['PATH', 'OTHER WORK CPU %', 'H1 LOAD CPU %', 'H1 SERVE CPU %', 'H2 LOAD CPU %', 'H2 SERVE CPU %'],
      busy.map((x) => [
        x.name,
        num(outside(x), 1),
        num(x.h1?.cpuBusy.load, 0),
        num(x.h1?.cpuBusy.serve, 0),
        num(x.h2?.cpuBusy.load, 0),
        num(x.h2?.cpuBusy.serve, 0),
      ]),
    ),
    'busy share of the CPUs during the saturation runs (the one near 100 % is the bottleneck); OTHER WORK: the most',
    'of the machine that processes outside the bench, or other machines on the host (steal), took just before or',
    "during this path's runs",
  ].join('\n');
}

function ratios(r: BenchReport): string {
  const pairs = Object.entries(r.ratios);
  if (pairs.length === 0) return '';
  const times = (v: number | undefined): string => (missing(v) ? '–' : `${v.toFixed(2)}x`);
  return [
    table(
      ['A/B', 'H1 REQ/S', 'H2 REQ/S', `${r.plan.rate}/S +P50`, '+P99', '+MAX', 'CPU/REQ H1', 'CPU/REQ H2', 'RSS LOADED', `RSS ${r.plan.idleConnections} CONNS`],
      pairs.map(([pair, q]) => [
        pair,
        times(q.h1Rps),
        times(q.h2Rps),
        signed(q.fixedDeltaMs.p50),
        signed(q.fixedDeltaMs.p99),
        signed(q.fixedDeltaMs.max),
        times(q.cpuPerRequest?.h1),
        times(q.cpuPerRequest?.h2),
        times(q.rss?.loaded),
        times(q.rss?.held),
      ]),
    ),
    'A over B: req/s at saturation (above 1x: A is faster); CPU µs per request and RSS per proxy, the mean of each',
    "path's proxies (above 1x: A costs more); +P50/+P99/+MAX: A's fixed-rate latency minus B's, ms",
  ].join('\n');
}

function problems(r: BenchReport): string {
  const bad = r.paths.filter((x) => x.problems.length > 0);
  if (bad.length === 0) return '';
  return ['RUNS WITH ERRORS (their numbers are suspect):', ...bad.flatMap((x) => x.problems.map((line) => `  ${x.name}: ${line}`))].join('\n');
}

/** A saturation run whose generator CPU was this busy measured the generator as much as the path. */
const GENERATOR_BOUND_PERCENT = 90;
const noisy = isNoisy;

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

const missing = (v: number | undefined): v is undefined => v === undefined || !Number.isFinite(v);
const num = (v: number | undefined, digits: number): string => (missing(v) ? '–' : v.toFixed(digits));
const rps = (v: number | undefined): string => (missing(v) ? '–' : Math.round(v).toString());

/** Milliseconds with about three significant digits. */
function ms(v: number | undefined): string {
  if (missing(v)) return '–';
  const a = Math.abs(v);
  return v.toFixed(a < 1 ? 3 : a < 10 ? 2 : 1);
}

function signed(v: number | undefined): string {
  if (missing(v)) return '–';
  return `${v >= 0 ? '+' : ''}${ms(v)}`;
}
