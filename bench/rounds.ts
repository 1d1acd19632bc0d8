// Head to head: two paths measured in turns (A, B, A, B, ...), tiny requests at saturation, so a
// drift of the VM's speed over the run (measured: HAProxy at 24k req/s in one run, 32k in
// another) lands on both alike. Each round's ratio is A's over B's from runs minutes apart at
// most; the median of the rounds is the figure, the spread says how far one round can be off.
// Each turn brings its path up afresh (warm-up included) and down again: the paths share pods.
import { cpuMs } from './procfs.js';
import { h2load, wrk, type LoadContext } from './load.js';
import { upPath, type PathName } from './paths.js';
import type { Topology } from './topology.js';

export interface Turn {
  path: PathName;
  h1Rps: number;
  h2Rps: number;
  /** CPU µs per request, the mean of the path's proxies (NaN with none). */
  h1CpuUs: number;
  h2CpuUs: number;
}

export interface HeadToHead {
  a: PathName;
  b: PathName;
  durationS: number;
  /** One [A's turn, B's turn] per round. */
  rounds: Array<[Turn, Turn]>;
  /** A over B per round, and their medians (req/s: above 1 A is faster; CPU: above 1 A costs more). */
  ratios: { h1Rps: number[]; h2Rps: number[]; h1Cpu: number[]; h2Cpu: number[] };
  median: { h1Rps: number; h2Rps: number; h1Cpu: number; h2Cpu: number };
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The per-round ratios and their medians, from the turns. */
export function summarize(a: PathName, b: PathName, durationS: number, rounds: Array<[Turn, Turn]>): HeadToHead {
  const over = (f: (t: Turn) => number): number[] => rounds.map(([x, y]) => f(x) / f(y));
  const ratios = { h1Rps: over((t) => t.h1Rps), h2Rps: over((t) => t.h2Rps), h1Cpu: over((t) => t.h1CpuUs), h2Cpu: over((t) => t.h2CpuUs) };
  return {
    a, b, durationS, rounds, ratios,
    median: { h1Rps: median(ratios.h1Rps), h2Rps: median(ratios.h2Rps), h1Cpu: median(ratios.h1Cpu), h2Cpu: median(ratios.h2Cpu) },
  };
}

/** One turn: the path up, a warm-up, HTTP/1.1 and h2c at saturation (tiny), the path down. */
async function turn(t: Topology, name: PathName, durationS: number, warmupS: number): Promise<Turn> {
  const path = await upPath(t, name);
  try {
    const ctx: LoadContext = { client: t.client, pin: t.pin, dir: t.dir };
    await wrk(ctx, path.h1, { connections: 50, durationS: warmupS });
    const cpu = (): number[] => path.proxies.map((p) => cpuMs(p.pid));
    const perRequest = (before: number[], requests: number): number =>
      before.length === 0 || requests === 0 ? NaN : (cpu().reduce((s, c, i) => s + c - before[i]!, 0) * 1000) / requests / before.length;
    let before = cpu();
    const h1 = await wrk(ctx, path.h1, { connections: 50, durationS });
    const h1CpuUs = perRequest(before, h1.requests);
    before = cpu();
    const h2 = await h2load(ctx, path.h2, { clients: 10, streams: 10, durationS });
    const h2CpuUs = perRequest(before, h2.requests);
    if (h1.errors + h1.non2xx + h2.errors + h2.non2xx > 0) throw new Error(`${name}: errors in a head-to-head turn (${h1.errorDetail || h2.errorDetail || 'non-2xx'})`);
    return { path: name, h1Rps: h1.rps, h2Rps: h2.rps, h1CpuUs, h2CpuUs };
  } finally {
    await path.down();
  }
}

export async function headToHead(t: Topology, a: PathName, b: PathName, rounds: number, durationS: number, warmupS: number, progress: (line: string) => void): Promise<HeadToHead> {
  const done: Array<[Turn, Turn]> = [];
  for (let i = 1; i <= rounds; i++) {
    progress(`head to head, round ${i} of ${rounds}: ${a}, then ${b} (tiny, ${durationS}s each of HTTP/1.1 and h2c)`);
    const x = await turn(t, a, durationS, warmupS);
    const y = await turn(t, b, durationS, warmupS);
    done.push([x, y]);
  }
  return summarize(a, b, durationS, done);
}
