// Where a path's proxies spend their CPU: one path of the bench under saturating load, each proxy
// sampled with `perf record` (JIT frames named through --perf-basic-prof), a flat report per
// proxy. Not a test; bounded like the bench (fixed durations, the lab removed on exit).
//
//   node dist/bench/profile.js [--path mesh] [--proto h1|h2] [--workload tiny|realistic]
//                              [--rate R] [--duration S] [--out DIR]
//
// `perf`, not `--cpu-prof`: the V8 profiler samples wall time and blames socket writes.
import { Command, InvalidArgumentError, Option } from 'commander';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetrics, type Sample } from '../cli/prom-text.js';
import { PROXY_PORTS } from '../contract/sidecar.js';
import type { Pod } from '../lab/index.js';
import { wholeNumber } from './args.js';
import { bulkTransfer } from './bulk.js';
import { fixedRate, h2load, wrk, type LoadContext } from './load.js';
import { PATH_NAMES, upPath, type PathName } from './paths.js';
import { choosePinning } from './pin.js';
import { cpuMs, memory, minorFaults } from './procfs.js';
import { createTopology } from './topology.js';
import { WORKLOADS, WORKLOAD_NAMES, type WorkloadName } from './workload.js';

interface Options {
  path: PathName;
  proto: 'h1' | 'h2';
  workload: WorkloadName;
  duration: number;
  out: string;
  top: number;
  record: boolean;
  rounds: number;
  /** With --no-record: after the load, memory again every 5 s for this long (how it settles). */
  settle: number;
  /** Seconds the path rests after coming up, before the warm-up (as the bench's idle reading does). */
  rest: number;
  /** HTTP/1.1 with a new connection per request (Connection: close): the connection-churn case. */
  churn: boolean;
  /** HTTP/1.1 at this fixed rate (tiny requests, 10 connections) instead of saturation. */
  rate?: number;
  /** The opaque bulk transfer instead (bench/bulk.ts), this many MiB each way; "requests" are MiB. */
  bulkMib?: number;
}

/** The proxy's own /metrics, parsed. */
async function scrape(pod: Pod): Promise<Sample[]> {
  const r = await pod.exec('curl', ['-sf', '--max-time', '5', `http://127.0.0.1:${PROXY_PORTS.admin}/metrics`]);
  return parseMetrics(r.stdout);
}

interface GcKind {
  count: number;
  ms: number;
  /** How many took over 1 ms and over 10 ms (prom-client's buckets). */
  over1: number;
  over10: number;
}

/** GC counts and time by kind so far (prom-client's nodejs_gc_duration_seconds). */
function gcByKind(samples: Sample[]): Map<string, GcKind> {
  const by = new Map<string, GcKind>();
  const of = (kind: string): GcKind => {
    let k = by.get(kind);
    if (!k) by.set(kind, (k = { count: 0, ms: 0, over1: 0, over10: 0 }));
    return k;
  };
  const within = { '0.001': new Map<string, number>(), '0.01': new Map<string, number>() };
  for (const x of samples) {
    const kind = x.labels.kind ?? '?';
    if (x.name === 'nodejs_gc_duration_seconds_count') of(kind).count = x.value;
    else if (x.name === 'nodejs_gc_duration_seconds_sum') of(kind).ms = x.value * 1000;
    else if (x.name === 'nodejs_gc_duration_seconds_bucket' && (x.labels.le === '0.001' || x.labels.le === '0.01')) within[x.labels.le].set(kind, x.value);
  }
  for (const [kind, k] of by) {
    k.over1 = k.count - (within['0.001'].get(kind) ?? 0);
    k.over10 = k.count - (within['0.01'].get(kind) ?? 0);
  }
  return by;
}

/** The proxy's GC count and seconds so far, all kinds. */
async function gcSeconds(pod: Pod): Promise<{ count: number; seconds: number }> {
  let count = 0;
  let ms = 0;
  for (const k of gcByKind(await scrape(pod)).values()) {
    count += k.count;
    ms += k.ms;
  }
  return { count, seconds: ms / 1000 };
}

/** RSS split (anonymous and file-backed) and the heap as the proxy's own metrics report it. */
async function memoryOf(pid: number, pod: Pod): Promise<string> {
  const m = memory(pid);
  const samples = await scrape(pod);
  const metric = (name: string): number => samples.find((x) => x.name === name)?.value ?? NaN;
  const mb = (b: number): string => (b / 1048576).toFixed(1);
  const spaces = samples.filter((x) => x.name === 'nodejs_heap_space_size_used_bytes').map((x) => `${x.labels.space}=${mb(x.value)}`);
  return (
    `VmRSS ${m.rssMb.toFixed(1)} MB (anon ${m.anonMb?.toFixed(1)}, file ${m.fileMb?.toFixed(1)}), spaces ${spaces.join(' ')}, ` +
    `heap used ${mb(metric('nodejs_heap_size_used_bytes'))} of ${mb(metric('nodejs_heap_size_total_bytes'))} MB, external ${mb(metric('nodejs_external_memory_bytes'))} MB`
  );
}

const say = (line: string): void => void process.stderr.write(`profile: ${line}\n`);

async function profile(o: Options): Promise<number> {
  if (o.churn && (o.proto !== 'h1' || o.bulkMib !== undefined || o.rate !== undefined)) {
    say('--churn is HTTP/1.1 saturation only (Connection: close means nothing to h2, bulk or the fixed rate)');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    say('needs root (it creates network namespaces and runs perf on other users\' processes)');
    return 1;
  }
  // Node writes /tmp/perf-<pid>.map for its JIT code when started with this; perf reads it. Only
  // when sampling: it also turns on V8's event log (every heap chunk made or freed, to stdout).
  if (o.record) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim();
  mkdirSync(o.out, { recursive: true });
  const t = await createTopology(choosePinning(), (o.bulkMib ?? 0) * 1048576);
  try {
    const path = await upPath(t, o.path);
    try {
      const ctx: LoadContext = { client: t.client, pin: t.pin, dir: t.dir };
      const w = o.churn ? { ...WORKLOADS[o.workload], headers: [...WORKLOADS[o.workload].headers, ['Connection', 'close'] as const] } : WORKLOADS[o.workload];
      const load = async (durationS: number): Promise<{ requests: number }> => {
        if (t.bulk && path.bulk) {
          const b = await bulkTransfer(t.client, t.pin, t.bulk.server, path.bulk, t.bulk.bytes, 600_000);
          say(`bulk: ${o.bulkMib} MiB each way in ${(b.ms / 1000).toFixed(2)} s, ${b.mbPerS.toFixed(0)} MB/s both ways${b.intact ? '' : `; NOT INTACT: ${b.problem}`} (per "request" below: per MiB each way)`);
          return { requests: o.bulkMib! };
        }
        if (o.rate !== undefined) {
          const f = await fixedRate(ctx, path.h1, { rate: o.rate, durationS, connections: 10 });
          say(`latency ms p50 ${f.latencyMs.p50.toFixed(2)} p90 ${f.latencyMs.p90.toFixed(2)} p99 ${f.latencyMs.p99.toFixed(2)} p99.9 ${f.latencyMs.p999.toFixed(2)}; service p99 ${f.serviceMs.p99.toFixed(2)}, send lag p99 ${f.sendLagMs.p99.toFixed(2)}; over 1 ms by second: ${f.over1msBySecond.join(' ')}`);
          return { requests: f.completed };
        }
        return o.proto === 'h1'
          ? wrk(ctx, path.h1, { connections: 50, durationS, workload: w })
          : h2load(ctx, path.h2, { clients: 10, streams: 10, durationS, workload: w });
      };
      if (o.rest > 0) {
        say(`${o.path}: at rest ${o.rest}s`);
        await new Promise((r) => setTimeout(r, o.rest * 1000));
      }
      say(`${o.path}: warm-up 3s`);
      await load(3);
      const pods = path.proxies.map((p) => (p.side === 'client' ? t.client : t.server));
      if (!o.record) {
        // Without sampling: CPU per request and throughput only, `rounds` times (to see the noise).
        for (let round = 1; round <= o.rounds; round++) {
          const cpu0 = path.proxies.map((p) => cpuMs(p.pid));
          const faults0 = path.proxies.map((p) => minorFaults(p.pid));
          const gc0 = o.path.startsWith('mesh') ? await Promise.all(pods.map(async (pod) => gcByKind(await scrape(pod)))) : [];
          const countersBefore = o.churn && gc0.length > 0 ? await Promise.all(pods.map(scrape)) : [];
          const r = await load(o.duration);
          if (gc0.length > 0) {
            const gc1 = await Promise.all(pods.map(async (pod) => gcByKind(await scrape(pod))));
            for (const [i, p] of path.proxies.entries()) {
              const parts: string[] = [];
              for (const [kind, k] of gc1[i]!) {
                const b = gc0[i]!.get(kind) ?? { count: 0, ms: 0, over1: 0, over10: 0 };
                if (k.count === b.count) continue;
                parts.push(`${kind} ${k.count - b.count} (${(k.ms - b.ms).toFixed(0)} ms, ${k.over1 - b.over1} over 1 ms, ${k.over10 - b.over10} over 10 ms)`);
              }
              say(`${p.side}-side GC in the run: ${parts.join('; ') || 'none'}`);
            }
          }
          if (o.churn && gc0.length > 0) {
            // Every counter that moved in the round, per request: a client connection per request is
            // expected on the client side; anything else that scales with requests is a finding.
            const totals = (xs: Sample[]): Map<string, number> => {
              const m = new Map<string, number>();
              for (const x of xs) {
                if (!x.name.endsWith('_total')) continue;
                const k = `${x.name}{${Object.entries(x.labels).filter(([l]) => !/^(dst|src|authority|route|pod|namespace|service|server_id|client_id|deployment)/.test(l)).map(([l, v]) => `${l}=${v}`).join(',')}}`;
                m.set(k, (m.get(k) ?? 0) + x.value);
              }
              return m;
            };
            for (const [i, p] of path.proxies.entries()) {
              const now = totals(await scrape(pods[i]!));
              const then = totals(countersBefore[i]!);
              const moved = [...now].map(([k, v]) => [k, (v - (then.get(k) ?? 0)) / r.requests] as const).filter(([, d]) => d >= 0.001);
              for (const [k, d] of moved) say(`${p.side}-side per request: ${k} ${d.toFixed(3)}`);
            }
          }
          const cpu = path.proxies.map((p, i) => ((cpuMs(p.pid) - cpu0[i]!) * 1000) / r.requests);
          const faults = path.proxies.map((p, i) => (minorFaults(p.pid) - faults0[i]!) / r.requests);
          say(`round ${round}: ${Math.round(r.requests / o.duration)} req/s, CPU µs/request ${path.proxies.map((p, i) => `${p.side} ${cpu[i]!.toFixed(1)}`).join(', ')}; minor faults/request ${path.proxies.map((p, i) => `${p.side} ${faults[i]!.toFixed(2)}`).join(', ')}`);
        }
        for (const p of path.proxies) {
          // What the proxy warned about during the runs, tallied by message (addresses and numbers folded).
          const tally = new Map<string, number>();
          for (const line of p.process.lines()) {
            if (!/ (WARN|ERROR) /.test(line)) continue;
            const key = line.replace(/^\S+ /, '').replace(/\d+(\.\d+)?/g, 'N').slice(0, 160);
            tally.set(key, (tally.get(key) ?? 0) + 1);
          }
          for (const [k, n] of [...tally].sort((x, y) => y[1] - x[1]).slice(0, 8)) say(`${p.side}-side log ×${n}: ${k}`);
        }
        for (const [i, p] of path.proxies.entries()) say(`${p.side}-side memory after load: ${await memoryOf(p.pid, pods[i]!)}`);
        for (let waited = 5; waited <= o.settle; waited += 5) {
          await new Promise((r) => setTimeout(r, 5000));
          for (const [i, p] of path.proxies.entries()) say(`${p.side}-side memory ${waited} s after load: ${await memoryOf(p.pid, pods[i]!)}`);
        }
        return 0;
      }
      const gcBefore = await Promise.all(pods.map(gcSeconds));
      const counters = path.proxies.map((p) => {
        const file = join(o.out, `${o.path}-${o.proto}-${o.workload}-${p.side}.stat`);
        const st = spawn('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter,task-clock', '-p', String(p.pid), '-o', file, '--', 'sleep', String(o.duration)], { stdio: 'ignore' });
        return { file, done: new Promise<void>((resolve) => st.once('exit', () => resolve())) };
      });
      const recorders = path.proxies.map((p) => {
        const file = join(o.out, `${o.path}-${o.proto}-${o.workload}-${p.side}.data`);
        const rec = spawn('perf', ['record', '-F', '1999', '-g', '-p', String(p.pid), '-o', file, '--', 'sleep', String(o.duration)], { stdio: 'ignore' });
        return { side: p.side, file, done: new Promise<void>((resolve) => rec.once('exit', () => resolve())) };
      });
      say(`${o.path}: ${o.proto} ${o.workload} load ${o.duration}s under perf`);
      const r = await load(o.duration);
      await Promise.all([...recorders, ...counters].map((r) => r.done));
      const gcAfter = await Promise.all(pods.map(gcSeconds));
      say(`${r.requests} requests, ${Math.round(r.requests / o.duration)} req/s`);
      for (const p of path.proxies) {
        const gcLines = p.process.lines().filter((l) => /Scavenge|Mark-Compact|Mark-sweep/.test(l));
        if (gcLines.length > 0) writeFileSync(join(o.out, `${o.path}-${o.proto}-${o.workload}-${p.side}.gc`), `${gcLines.join('\n')}\n`);
      }
      for (const [i, rec] of recorders.entries()) {
        const stat = readFileSync(counters[i]!.file, 'utf8');
        const value = (event: string): number => Number(stat.split('\n').find((l) => l.includes(event))?.split(',')[0] ?? NaN);
        const gc = { count: gcAfter[i]!.count - gcBefore[i]!.count, seconds: gcAfter[i]!.seconds - gcBefore[i]!.seconds };
        say(
          `${rec.side}-side: ${(value('raw_syscalls:sys_enter') / r.requests).toFixed(2)} syscalls/request, ` +
            `${((value('task-clock') * 1000) / r.requests).toFixed(1)} µs CPU/request (under perf), ` +
            `${((gc.count * 1000) / r.requests).toFixed(2)} GCs per 1000 requests, ${((gc.seconds * 1e6) / r.requests).toFixed(2)} µs GC/request`,
        );
        // -f: the proxy runs as its own uid, so its JIT map is not owned by root.
        const flat = execFileSync('perf', ['report', '-f', '-i', rec.file, '--no-children', '--sort', 'dso,symbol', '--stdio', '-g', 'none', '--percent-limit', '0.4'], {
          encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'],
        });
        const byDso = execFileSync('perf', ['report', '-f', '-i', rec.file, '--no-children', '--sort', 'dso', '--stdio', '-g', 'none'], {
          encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'],
        });
        const lines = (s: string, n: number): string =>
          s.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, n).map((l) => l.replace(/\s+-?\s+-?\s*$/, '')).join('\n');
        const text = `## ${rec.side}-side proxy\n### by object\n${lines(byDso, 15)}\n### by symbol\n${lines(flat, o.top)}\n`;
        writeFileSync(rec.file.replace(/\.data$/, '.txt'), text);
        process.stdout.write(`${text}\n`);
      }
    } finally {
      await path.down();
    }
  } finally {
    await t.destroy();
  }
  return 0;
}

const program = new Command('profile')
  .description("Sample one bench path's proxies with perf under saturating load")
  .addOption(new Option('--path <name>', 'the bench path').choices([...PATH_NAMES]).default('mesh'))
  .addOption(new Option('--proto <p>', 'HTTP/1.1 (wrk) or h2c (h2load)').choices(['h1', 'h2']).default('h1'))
  .addOption(new Option('--workload <name>').choices([...WORKLOAD_NAMES]).default('tiny'))
  .option('--duration <seconds>', 'sampled load', (raw) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || n > 120) throw new InvalidArgumentError('--duration must be 1..120 seconds');
    return n;
  }, 10)
  .option('--top <n>', 'symbols shown per proxy', (raw) => Number(raw), 45)
  .option('--no-record', 'no perf sampling: throughput and CPU per request only')
  .option('--rounds <n>', 'with --no-record: how many load runs', (raw) => Number(raw), 3)
  .option('--churn', 'HTTP/1.1 with a new connection per request (Connection: close)', false)
  .option('--rest <seconds>', 'leave the path at rest this long after it comes up, before the warm-up', wholeNumber('--rest', 0, 600), 0)
  .option('--settle <seconds>', 'with --no-record: memory again every 5 s for this long after the load', (raw) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 600) throw new InvalidArgumentError('--settle must be 0..600 seconds');
    return n;
  }, 0)
  .option('--rate <req/s>', 'HTTP/1.1 at this fixed rate (tiny requests, 10 connections) instead of saturating', wholeNumber('--rate', 1, 100_000))
  .option('--bulk-mib <n>', 'the opaque bulk transfer instead of HTTP (this many MiB each way; the path must carry opaque TCP); figures per MiB', wholeNumber('--bulk-mib', 1, 16384))
  .option('--out <dir>', 'where perf data and reports go', '/tmp/mesh-profile')
  .action(async (opts: Options) => {
    process.exitCode = await profile(opts);
  });

await program.parseAsync();
