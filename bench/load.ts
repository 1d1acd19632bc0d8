// The load generators, each run inside the client pod on the load CPU with a hard time limit:
// wrk (HTTP/1.1, saturation), h2load (h2c, saturation), fixed-rate (HTTP/1.1 on a timetable)
// and hold-conns (many idle keep-alive connections).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pod, PodProcess } from '../lab/index.js';
import type { FixedRateResult } from './fixed-rate.js';
import type { HoldResult } from './hold-conns.js';
import { h2loadLogLatencies, parseH2load, parseWrk, type SaturationResult } from './parse.js';
import { onCpus, type Pinning } from './pin.js';
import { percentiles } from './stats.js';
import type { Endpoint } from './topology.js';
import { WORKLOADS, type Workload } from './workload.js';

export interface LoadContext {
  client: Pod;
  pin: Pinning | undefined;
  dir: string;
}

const script = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));
/** What a run may take beyond its nominal duration (start-up, drain) before it is killed. */
const SLACK_MS = 20_000;

async function run(ctx: LoadContext, cmd: string, args: string[], durationS: number): Promise<string> {
  const [c, a] = onCpus(ctx.pin, 'load', cmd, args);
  const r = await ctx.client.execOk(c, a, { timeoutMs: durationS * 1000 + SLACK_MS });
  return r.stdout;
}

const url = (t: Endpoint, path = '/'): string => `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${path}`;

export interface WrkOptions {
  connections: number;
  durationS: number;
  /** What to request; tiny unless given. */
  workload?: Workload;
}

/**
 * wrk's command line. Its -H (repeatable) takes "Name: value" with exactly ": " after the name
 * (wrk 4.1 drops any other form silently) and sends them in no fixed order.
 */
export function wrkArgs(target: Endpoint, o: WrkOptions): string[] {
  const w = o.workload ?? WORKLOADS.tiny;
  return [
    '-t1', `-c${o.connections}`, `-d${o.durationS}s`, '--timeout', '2s', '--latency',
    ...w.headers.flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    url(target, w.path),
  ];
}

export async function wrk(ctx: LoadContext, target: Endpoint, o: WrkOptions): Promise<SaturationResult> {
  const out = await run(ctx, 'wrk', wrkArgs(target, o), o.durationS);
  return parseWrk(out);
}

export interface H2loadOptions {
  clients: number;
  streams: number;
  durationS: number;
  /** What to request; tiny unless given. */
  workload?: Workload;
}

/**
 * h2load's command line, without the log file. Header names in lower case, as HTTP/2 requires;
 * h2load's HPACK encoder (nghttp2) indexes them, except Authorization, which it never indexes,
 * so the token crosses every stream whole, as it does from a browser.
 */
export function h2loadArgs(target: Endpoint, o: H2loadOptions): string[] {
  const w = o.workload ?? WORKLOADS.tiny;
  return [
    '-t1', `-c${o.clients}`, `-m${o.streams}`, `-D${o.durationS}`,
    ...w.headers.flatMap(([name, value]) => ['-H', `${name.toLowerCase()}: ${value}`]),
    url(target, w.path),
  ];
}

export async function h2load(ctx: LoadContext, target: Endpoint, o: H2loadOptions): Promise<SaturationResult> {
  // h2load prints no percentiles; its per-request log has each request's latency. Kept in
  // memory (tmpfs) where there is one: a few MB a second, written by the generator's own core.
  const log = join(existsSync('/dev/shm') ? '/dev/shm' : ctx.dir, `mesh-bench-h2load-${process.pid}-${Date.now()}.log`);
  try {
    const out = await run(ctx, 'h2load', [`--log-file=${log}`, ...h2loadArgs(target, o)], o.durationS);
    const p = percentiles(h2loadLogLatencies(readFileSync(log, 'utf8')));
    return parseH2load(out, { p50: p.p50, p90: p.p90, p99: p.p99, max: p.max });
  } finally {
    rmSync(log, { force: true });
  }
}

export interface FixedRateOptions {
  rate: number;
  durationS: number;
  connections: number;
  /** Seconds at the same rate before the measured ones, reported apart (the generator's default: 1). */
  warmupS?: number;
}

export async function fixedRate(ctx: LoadContext, target: Endpoint, o: FixedRateOptions): Promise<FixedRateResult> {
  const out = await run(ctx, process.execPath, [
    script('fixed-rate.js'),
    '--host', target.host, '--port', String(target.port),
    '--rate', String(o.rate), '--duration', String(o.durationS), '--connections', String(o.connections),
    ...(o.warmupS === undefined ? [] : ['--warmup', String(o.warmupS)]),
  ], o.durationS + (o.warmupS ?? 1));
  return JSON.parse(out.trim().split('\n').pop() ?? '') as FixedRateResult;
}

export interface HeldConnections {
  result: HoldResult;
  /** Closes them; resolves with how many the path dropped while they were held. */
  release(): Promise<number>;
}

/** Opens `count` connections through `target`, one request each, and holds them (60 s at most). */
export async function holdConnections(ctx: LoadContext, target: Endpoint, count: number): Promise<HeldConnections> {
  const [c, a] = onCpus(ctx.pin, 'load', process.execPath, [
    script('hold-conns.js'), '--host', target.host, '--port', String(target.port), '--count', String(count), '--hold', '60',
  ]);
  const proc: PodProcess = ctx.client.spawn(c, a);
  const [line] = await proc.waitForLine(/^\{"open":.*$/, 30_000);
  return {
    result: JSON.parse(line) as HoldResult,
    release: async () => {
      proc.child.stdin?.end();
      const [done] = await proc.waitForLine(/^\{"lostWhileHeld":.*$/, 10_000).catch(() => ['{"lostWhileHeld":-1}']);
      await proc.stop();
      return (JSON.parse(done) as { lostWhileHeld: number }).lostWhileHeld;
    },
  };
}
