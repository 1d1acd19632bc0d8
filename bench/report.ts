// Turns path results into comparisons (ratios, latency added over direct) and into the text
// the bench prints. Pure: the results file and the tables come from the same object.
import { IDLE_WAIT_S, isNoisy, otherWorkPercent as outside, RSS_TARGET_MB, type PathResult, type Plan } from './measure.js';
import type { PathName } from './paths.js';
import { WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from './workload.js';
import type { HeadToHead } from './rounds.js';
import type { BulkHeadToHead } from './bulk-rounds.js';

export interface Added {
  p50: number;
  p99: number;
  max: number;
}

/** One workload's saturation runs, a over b. */
export interface WorkloadRatio {
  /** a's saturation throughput over b's (HTTP/1.1 and h2c). */
  h1Rps: number;
  h2Rps: number;
  /** a's CPU time per request per proxy over b's (the mean of each path's proxies); when both have proxies. */
  cpuPerRequest?: { h1: number; h2: number };
}

export interface Ratio {
  /** Per workload that both paths ran. */
  workloads: Partial<Record<WorkloadName, WorkloadRatio>>;
  /** a's fixed-rate latency minus b's, ms (tiny requests). */
  fixedDeltaMs: Added;
  /** a's RSS per proxy over b's, after load and with the idle connections held; when both have proxies. */
  rss?: { loaded: number; settled?: number; held: number };
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
  /** Opaque bulk throughput of each path over direct's (both directions together), when both ran it intact. */
  bulkVsDirect: Partial<Record<PathName, number>>;
  /** Mesh and HAProxy (mTLS) measured in turns, when both were measured. */
  headToHead?: HeadToHead;
  /** Opaque bulk, direct and the paths that carry opaque TCP in turns, when direct and the mesh were measured. */
  bulkHeadToHead?: BulkHeadToHead;
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
  // What discovery and balancing cost (the same mTLS path, the peer given by the override list).
  ['mesh', 'mesh-static'],
  // What a flooded tap consumer on the server-side proxy costs (the most a watcher may ask: 1,000 requests a second).
  ['mesh-tap', 'mesh'],
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

export function compare(paths: PathResult[]): Pick<BenchReport, 'addedVsDirect' | 'ratios' | 'bulkVsDirect'> {
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
  const bulkVsDirect: BenchReport['bulkVsDirect'] = {};
  const direct = by.get('direct');
  if (direct?.bulk?.intact) {
    for (const p of paths) if (p.name !== 'direct' && p.bulk?.intact) bulkVsDirect[p.name] = p.bulk.mbPerS / direct.bulk.mbPerS;
  }
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
    if (!pa || !pb || !d) continue;
    const withProxies = pa.proxies.length > 0 && pb.proxies.length > 0;
    const over = (value: (x: PathResult['proxies'][number]) => number | undefined): number => perProxy(pa, value) / perProxy(pb, value);
    const workloads: Ratio['workloads'] = {};
    for (const w of WORKLOAD_NAMES) {
      const [ra, rb] = [pa.saturation[w], pb.saturation[w]];
      if (!ra?.h1 || !rb?.h1 || !ra.h2 || !rb.h2) continue;
      const q: WorkloadRatio = { h1Rps: ra.h1.rps / rb.h1.rps, h2Rps: ra.h2.rps / rb.h2.rps };
      if (withProxies) q.cpuPerRequest = { h1: over((x) => x.cpuUsPerRequest[w]?.h1), h2: over((x) => x.cpuUsPerRequest[w]?.h2) };
      workloads[w] = q;
    }
    if (Object.keys(workloads).length === 0) continue;
    const r: Ratio = { workloads, fixedDeltaMs: d };
    if (withProxies) {
      r.rss = { loaded: over((x) => x.loaded?.rssMb), held: over((x) => x.held?.rssMb) };
      const settled = over((x) => x.settled?.rssMb);
      if (Number.isFinite(settled)) r.rss.settled = settled;
    }
    ratios[`${a}/${b}`] = r;
  }
  return { addedVsDirect, ratios, bulkVsDirect };
}

export function formatReport(r: BenchReport): string {
  const sections = [header(r), throughput(r), notes(r), memory(r), cpu(r), ratios(r), bulk(r), rounds(r), bulkRounds(r), problems(r)];
  return `${sections.filter((x) => x !== '').join('\n\n')}\n`;
}

function header(r: BenchReport): string {
  const p = r.plan;
  return [
    `mesh bench ${r.startedAt}  git ${r.git.commit.slice(0, 12)}${r.git.dirty ? ' (dirty tree)' : ''}`,
    r.pinning,
    `saturation: wrk -t1 -c${p.connections} -d${p.durationS}s (HTTP/1.1), h2load -t1 -c${p.h2Clients} -m${p.h2Streams} -D${p.durationS} (h2c), ` +
      `once per workload; fixed rate: ${p.rate} req/s for ${p.durationS}s (after ${p.rateWarmupS}s at the rate, reported apart) over ${p.rateConnections} connections, ` +
      `tiny requests, latency from the scheduled send time; warm-up ${p.warmupS}s; ${p.idleConnections} idle connections for RSS`,
    ...p.workloads.map((w) => `workload ${w}: ${WORKLOADS[w].summary}`),
    '',
    ...r.paths.map((x) => `${x.name.padEnd(Math.max(...r.paths.map((p) => p.name.length)))}  ${x.description}`),
  ].join('\n');
}

/**
 * One row per path and workload; what is measured once per path (the fixed-rate run, memory)
 * is on the path's first row only.
 */
function perWorkload<T>(workloads: WorkloadName[], rows: (w: WorkloadName, first: boolean) => T): T[] {
  return workloads.map((w, i) => rows(w, i === 0));
}

function throughput(r: BenchReport): string {
  const added = (name: PathName): Added | undefined => r.addedVsDirect[name];
  return [
    table(
      ['PATH', 'WORKLOAD', 'H1 REQ/S', 'H1 P50', 'H1 P99', 'H2 REQ/S', 'H2 P50', 'H2 P99', `${r.plan.rate}/S P50`, 'P99', 'MAX', '+P50', '+P99', '+MAX', 'RUN'],
      r.paths.flatMap((x) =>
        perWorkload(r.plan.workloads, (w, first) => {
          const s = x.saturation[w];
          const once = (v: string): string => (first ? v : '');
          return [
            x.name,
            w,
            rps(s?.h1?.rps),
            ms(s?.h1?.latencyMs.p50),
            ms(s?.h1?.latencyMs.p99),
            rps(s?.h2?.rps),
            ms(s?.h2?.latencyMs.p50),
            ms(s?.h2?.latencyMs.p99),
            once(ms(x.fixed?.latencyMs.p50)),
            once(ms(x.fixed?.latencyMs.p99)),
            once(ms(x.fixed?.latencyMs.max)),
            once(signed(added(x.name)?.p50)),
            once(signed(added(x.name)?.p99)),
            once(signed(added(x.name)?.max)),
            x.problems.length > 0 ? 'ERRORS' : noisy(x) ? 'noisy' : 'ok',
          ];
        }),
      ),
      2,
    ),
    `latencies in ms; ${r.plan.rate}/S and +P50/+P99/+MAX: the fixed-rate run (tiny requests, once per path) and its latency added over direct`,
  ].join('\n');
}

/** What limits how far each path's numbers can be trusted, short of errors. */
function notes(r: BenchReport): string {
  const out: string[] = [];
  for (const x of r.paths) {
    for (const w of r.plan.workloads) {
      for (const [proto, run] of [['H1', x.saturation[w]?.h1], ['H2', x.saturation[w]?.h2]] as const) {
        if (run && run.cpuBusy.load >= GENERATOR_BOUND_PERCENT) {
          out.push(
            `${x.name}: ${w} ${proto} load CPU ${num(run.cpuBusy.load, 0)} %: the generator, not the path, limited throughput; ` +
              `this req/s is a lower bound (ratios against it are upper bounds)`,
          );
        }
      }
    }
    // Where the tail comes from: a reclaim or a GC shows as one busy second, a noisy machine as a spread.
    const slow = x.fixed?.over1msBySecond;
    if (slow !== undefined && slow.some((n) => n > 0)) out.push(`${x.name}: fixed-rate requests over 1 ms, by second: ${slow.join(' ')}`);
    // The seconds right after the saturating runs, apart: what a path does while load falls.
    const w = x.fixed?.warmup;
    if (w !== undefined && w.seconds > 1) {
      out.push(
        `${x.name}: fixed-rate warm-up, the ${w.seconds}s right after the saturating runs: p50 ${ms(w.latencyMs.p50)} p99 ${ms(w.latencyMs.p99)} max ${ms(w.latencyMs.max)} ms; ` +
          `over 1 ms by second: ${w.over1msBySecond.join(' ')}`,
      );
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

/** "TINY H1", "TINY H2", "REALISTIC H1", ...: the per-workload column heads, the first prefixed with `what`. */
function workloadHeads(workloads: WorkloadName[], what: string): string[] {
  return workloads.flatMap((w, i) => [`${i === 0 ? `${what} ` : ''}${w.toUpperCase()} H1`, `${w.toUpperCase()} H2`]);
}

function memory(r: BenchReport): string {
  const p = r.plan;
  const rows: string[][] = [];
  for (const x of r.paths) {
    const n = x.hold?.open ?? 0;
    for (const proxy of x.proxies) {
      const over = proxy.held && proxy.held.rssMb >= RSS_TARGET_MB;
      // Against what the proxy held just before the connections came.
      const base = proxy.settled ?? proxy.loaded;
      const perConn = proxy.held && base && n > 0 ? ((proxy.held.rssMb - base.rssMb) * 1024) / n : undefined;
      rows.push([
        x.name,
        proxy.side,
        ...p.workloads.flatMap((w) => [num(proxy.cpuUsPerRequest[w]?.h1, 1), num(proxy.cpuUsPerRequest[w]?.h2, 1)]),
        num(proxy.started?.rssMb, 1),
        num(proxy.idle?.rssMb, 1),
        num(proxy.loaded?.rssMb, 1),
        num(proxy.settled?.rssMb, 1),
        num(proxy.loaded?.hwmMb, 1),
        `${num(proxy.held?.rssMb, 1)}${over ? ' OVER' : ''}`,
        num(perConn, 1),
      ]);
    }
  }
  if (rows.length === 0) return '';
  return [
    table(['PATH', 'PROXY', ...workloadHeads(p.workloads, 'CPU µS/REQ'), 'RSS STARTED', 'IDLE', 'LOADED', 'SETTLED', 'PEAK', `${p.idleConnections} CONNS`, 'KB/CONN'], rows),
    `CPU µs per request per proxy in each saturation run; RSS in MB (VmRSS; STARTED just after the readiness requests, IDLE ${IDLE_WAIT_S} s on at rest; LOADED and PEAK (VmHWM) after all runs, ` +
      `every workload; SETTLED ${p.settleS} s after them, the proxies quiet); target < ${RSS_TARGET_MB} MB per proxy with ${p.idleConnections} connections`,
  ].join('\n');
}

function cpu(r: BenchReport): string {
  const busy = r.paths.filter((x) => Object.keys(x.saturation).length > 0);
  if (busy.length === 0) return '';
  return [
    table(
      ['PATH', 'WORKLOAD', 'OTHER WORK CPU %', 'H1 LOAD CPU %', 'H1 SERVE CPU %', 'H2 LOAD CPU %', 'H2 SERVE CPU %'],
      busy.flatMap((x) =>
        perWorkload(r.plan.workloads, (w, first) => {
          const s = x.saturation[w];
          return [
            x.name,
            w,
            first ? num(outside(x), 1) : '',
            num(s?.h1?.cpuBusy.load, 0),
            num(s?.h1?.cpuBusy.serve, 0),
            num(s?.h2?.cpuBusy.load, 0),
            num(s?.h2?.cpuBusy.serve, 0),
          ];
        }),
      ),
      2,
    ),
    'busy share of the CPUs during the saturation runs (the one near 100 % is the bottleneck); OTHER WORK: the most',
    'of the machine that processes outside the bench, or other machines on the host (steal), took just before or',
    "during this path's runs",
  ].join('\n');
}

function bulk(r: BenchReport): string {
  const ran = r.paths.filter((x) => x.bulk !== undefined);
  if (ran.length === 0) return '';
  const mib = r.plan.bulkBytes / 1048576;
  return [
    table(
      ['PATH', 'SECONDS', 'MB/S', 'VS DIRECT', 'CPU MS/GIB CLIENT-SIDE', 'SERVER-SIDE', 'INTACT'],
      ran.map((x) => {
        const b = x.bulk!;
        const cpu = (side: 'client' | 'server'): string => num(x.proxies.find((p) => p.side === side)?.bulkCpuMsPerGiB, 0);
        const vs = r.bulkVsDirect?.[x.name];
        return [x.name, num(b.ms / 1000, 2), num(b.mbPerS, 0), x.name === 'direct' ? '1.00x' : times(vs), cpu('client'), cpu('server'), b.intact ? 'yes' : 'NO'];
      }),
    ),
    `opaque bulk: ${mib} MiB each way at once over one connection, with half-close, SHA-256 checked at both ends; MB/s both`,
    'directions together (10^6 bytes); CPU: ms of proxy CPU per GiB carried. The sender on the load CPU, the receiver beside',
    'nginx and the proxies on the serving CPU',
  ].join('\n');
}

function rounds(r: BenchReport): string {
  const h = r.headToHead;
  if (h === undefined || h.rounds.length === 0) return '';
  const k = (v: number): string => (missing(v) ? '–' : String(Math.round(v)));
  const rows = h.rounds.map(([a, b], i) => [
    String(i + 1), k(a.h1Rps), k(b.h1Rps), times(h.ratios.h1Rps[i]!), k(a.h2Rps), k(b.h2Rps), times(h.ratios.h2Rps[i]!), times(h.ratios.h1Cpu[i]!), times(h.ratios.h2Cpu[i]!),
  ]);
  rows.push(['median', '', '', times(h.median.h1Rps), '', '', times(h.median.h2Rps), times(h.median.h1Cpu), times(h.median.h2Cpu)]);
  return [
    table(['ROUND', `${h.a} H1`, `${h.b} H1`, 'H1 RATIO', `${h.a} H2`, `${h.b} H2`, 'H2 RATIO', 'CPU/REQ H1', 'CPU/REQ H2'], rows),
    `head to head: ${h.a} and ${h.b} in turns, each turn brought up afresh, warmed up, then tiny requests at saturation for ${h.durationS}s`,
    `(HTTP/1.1, then h2c); ratios ${h.a} over ${h.b} per round (CPU: µs per request per proxy), and their median: the VM's speed drifts`,
    'over a run, and turns minutes apart share it',
  ].join('\n');
}

function bulkRounds(r: BenchReport): string {
  const h = r.bulkHeadToHead;
  if (h === undefined || h.rounds.length === 0) return '';
  const others = h.paths.slice(1);
  const rows = h.rounds.map((turns, i) => [
    String(i + 1),
    ...turns.map((x) => num(x.mbPerS, 0)),
    ...others.map((p) => times(h.ratios[p]?.[i])),
    ...turns.slice(1).map((x) => num(x.cpuMsPerGiB, 0)),
  ]);
  rows.push(['median', ...h.paths.map(() => ''), ...others.map((p) => times(h.median[p])), ...others.map(() => '')]);
  return [
    table(['ROUND', ...h.paths.map((p) => `${p} MB/S`), ...others.map((p) => `${p}/${h.paths[0]}`), ...others.map((p) => `${p} CPU MS/GIB`)], rows),
    `bulk head to head: ${h.paths.join(', ')} in turns, ${h.bytes / 1048576} MiB each way per transfer (after a warm-up one), each path brought up afresh;`,
    `ratios over ${h.paths[0]} from the same round, and their median (CPU: per proxy, per GiB carried, each way counted)`,
  ].join('\n');
}

function ratios(r: BenchReport): string {
  const pairs = Object.entries(r.ratios);
  if (pairs.length === 0) return '';
  return [
    table(
      ['A/B', 'WORKLOAD', 'H1 REQ/S', 'H2 REQ/S', 'CPU/REQ H1', 'CPU/REQ H2', `${r.plan.rate}/S +P50`, '+P99', '+MAX', 'RSS LOADED', 'SETTLED', `RSS ${r.plan.idleConnections} CONNS`],
      pairs.flatMap(([pair, q]) =>
        perWorkload(
          r.plan.workloads.filter((w) => q.workloads[w]),
          (w, first) => {
            const once = (v: string): string => (first ? v : '');
            const x = q.workloads[w];
            return [
              pair,
              w,
              times(x?.h1Rps),
              times(x?.h2Rps),
              times(x?.cpuPerRequest?.h1),
              times(x?.cpuPerRequest?.h2),
              once(signed(q.fixedDeltaMs.p50)),
              once(signed(q.fixedDeltaMs.p99)),
              once(signed(q.fixedDeltaMs.max)),
              once(times(q.rss?.loaded)),
              once(times(q.rss?.settled)),
              once(times(q.rss?.held)),
            ];
          },
        ),
      ),
      2,
    ),
    'A over B, per workload: req/s at saturation (above 1x: A is faster) and CPU µs per request per proxy, the mean of',
    "each path's proxies (above 1x: A costs more); once per pair: A's fixed-rate latency minus B's (ms, tiny requests)",
    'and RSS per proxy (above 1x: A costs more)',
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

/** Names in the first `left` columns (aligned left), figures after them (aligned right). */
function table(headers: string[], rows: string[][], left = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const missing = (v: number | undefined): v is undefined => v === undefined || !Number.isFinite(v);
const num = (v: number | undefined, digits: number): string => (missing(v) ? '–' : v.toFixed(digits));
/** A ratio: 0.64x. */
const times = (v: number | undefined): string => (missing(v) ? '–' : `${v.toFixed(2)}x`);
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
