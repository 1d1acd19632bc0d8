// One path, measured start to finish: up, idle memory, warm-up, HTTP/1.1 and h2c at saturation
// (once per workload: tiny, then realistic), HTTP/1.1 on a fixed timetable (tiny requests),
// memory after load, memory holding idle connections, down.
// A failure ends this path's measurements (recorded) but not the bench.
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { msPerGiB, transfersThrough, type BulkResult } from './bulk.js';
import type { FixedRateResult } from './fixed-rate.js';
import type { HoldResult } from './hold-conns.js';
import { fixedRate, h2load, holdConnections, wrk, type LoadContext } from './load.js';
import type { SaturationResult } from './parse.js';
import { upPath, type PathName, type RunningPath } from './paths.js';
import { cpuMs, cpuPercent, cpuTimes, foreignCpu, foreignPercent, memory, type Memory } from './procfs.js';
import type { Topology } from './topology.js';
import { WORKLOADS, type WorkloadName } from './workload.js';

export interface Plan {
  durationS: number;
  warmupS: number;
  /** wrk connections (HTTP/1.1 saturation). */
  connections: number;
  h2Clients: number;
  h2Streams: number;
  /** Requests per second of the fixed-rate run, and its keep-alive connections. */
  rate: number;
  rateConnections: number;
  /**
   * Seconds at that rate before the measured ones, reported apart: the path settles from the
   * saturating runs just before (a mesh proxy gives memory back once load falls, 2.5-7.5 s after).
   */
  rateWarmupS: number;
  idleConnections: number;
  /** Which workloads the saturation runs use (each: one wrk and one h2load run), in this order. */
  workloads: WorkloadName[];
  /** How long to wait, before each path, for other work on the machine to stop. */
  quietWaitS: number;
  /** After the loads, how long the proxies are left quiet before RSS is read again (`settled`). */
  settleS: number;
  /** Bytes each way of the opaque bulk transfer (bench/bulk.ts); 0: none. */
  bulkBytes: number;
}

/** Per-proxy memory target with the idle connections held (the product's goal). */
export const RSS_TARGET_MB = 60;
/** Background CPU use above this makes a path's numbers incomparable with a quiet run. */
export const NOISY_PERCENT = 5;

export interface CpuBusy {
  /** Busy share of the load CPU(s) and the serving CPU(s) during the run, in percent. */
  load: number;
  serve: number;
}

export type Saturation = SaturationResult & { cpuBusy: CpuBusy };
export type Proto = 'h1' | 'h2';

/** One workload's saturation runs on one path. */
export interface WorkloadRuns {
  h1?: Saturation;
  h2?: Saturation;
}

/** A measured run, for the noise readings: a workload's saturation run, or the fixed-rate run. */
export type RunKey = `${WorkloadName} ${Proto}` | 'fixed' | 'bulk';

/**
 * How long a path rests after coming up before its idle RSS is read. A mesh proxy gives memory
 * back once it has been quiet for two 2.5 s windows (proxy/memory.ts); read at once, "idle" was
 * the first handshakes' peak (measured: 52-53 MB, then 27 MB after the reclaim, 35 MB a few
 * seconds on as its timers touch pages again). Only with settleS (a quick run reads at once).
 */
export const IDLE_WAIT_S = 10;

export interface ProxyResult {
  side: 'client' | 'server';
  pid: number;
  /** Just after the path came up: the proxies had served the readiness requests (each a first handshake) a moment before. */
  started?: Memory;
  /** IDLE_WAIT_S later, nothing sent meanwhile: a proxy at rest (it gives back what start-up and first requests touched). */
  idle?: Memory;
  loaded?: Memory;
  /** `settleS` after the loads: what a proxy keeps once it is quiet (a mesh proxy gives back on its own). */
  settled?: Memory;
  held?: Memory;
  /** CPU time the proxy process spent per request during each saturation run, µs, per workload. */
  cpuUsPerRequest: Partial<Record<WorkloadName, { h1?: number; h2?: number }>>;
  /** The same during the fixed-rate run: light traffic, no batching. */
  fixedCpuUsPerRequest?: number;
  /** CPU time the proxy spent on the opaque bulk transfer, ms per GiB carried (each way counted). */
  bulkCpuMsPerGiB?: number;
}

export interface PathResult {
  name: PathName;
  description: string;
  /** Saturation runs per workload (those the plan names). */
  saturation: Partial<Record<WorkloadName, WorkloadRuns>>;
  fixed?: FixedRateResult;
  hold?: HoldResult & { lostWhileHeld: number };
  /** The opaque bulk transfer, on paths that carry opaque TCP (last: its buffers are in no memory reading). */
  bulk?: BulkResult;
  proxies: ProxyResult[];
  /**
   * Busy share of the machine's CPUs (percent) in a second before this path's load, when only
   * idle servers and proxies of the bench were running: other work that the numbers share the
   * machine with. More than a few percent makes them incomparable with other runs.
   */
  backgroundCpuPercent?: number;
  /** The same for processes outside the lab during each measured run (a lower bound). */
  foreignCpuPercent: Partial<Record<RunKey, number>>;
  /** Share of the CPUs' time the hypervisor gave to other machines during each measured run. */
  stealPercent: Partial<Record<RunKey, number>>;
  /** Anything that makes this path's numbers suspect: errors, non-2xx, lost connections. */
  problems: string[];
}

/**
 * The most CPU that work outside the bench took, before or during this path's runs (percent of
 * the machine): other processes here, or other machines on the same host (steal).
 */
export function otherWorkPercent(x: PathResult): number {
  const runs = [...Object.values(x.foreignCpuPercent ?? {}), ...Object.values(x.stealPercent ?? {})];
  return Math.max(x.backgroundCpuPercent ?? 0, ...runs.map((v) => v ?? 0));
}

export const isNoisy = (x: PathResult): boolean => otherWorkPercent(x) > NOISY_PERCENT;

/** Between runs, so one run's closing connections are not in the next one's numbers. */
const SETTLE_MS = 1000;

export async function measurePath(t: Topology, name: PathName, plan: Plan, progress: (line: string) => void): Promise<PathResult> {
  const result: PathResult = { name, description: '', proxies: [], saturation: {}, foreignCpuPercent: {}, stealPercent: {}, problems: [] };
  let path: RunningPath;
  try {
    path = await upPath(t, name);
  } catch (err) {
    result.problems.push(`did not come up: ${(err as Error).message}`);
    return result;
  }
  result.description = path.description;
  result.proxies = path.proxies.map((p) => ({ side: p.side, pid: p.pid, cpuUsPerRequest: {} }));
  const ctx: LoadContext = { client: t.client, pin: t.pin, dir: t.dir };
  const cpus = { load: t.pin?.load ?? [], serve: t.pin?.serve ?? [] };
  const proxyCpu = (): number[] => path.proxies.map((p) => cpuMs(p.pid));
  /** Runs `run`, noting how much CPU processes outside the lab, or other machines, took meanwhile. */
  const watched = async <T>(key: RunKey, run: () => Promise<T>): Promise<T> => {
    const before = foreignCpu(t.lab.namespaces());
    const sys = cpuTimes();
    const start = performance.now();
    const r = await run();
    const sysAfter = cpuTimes();
    result.foreignCpuPercent[key] = foreignPercent(before, foreignCpu(t.lab.namespaces()), performance.now() - start, availableParallelism());
    result.stealPercent[key] = cpuPercent(sys, sysAfter, [...sysAfter.keys()], 'steal');
    return r;
  };

  /** Runs one saturation measurement with CPU accounting around it. */
  const saturate = async (workload: WorkloadName, proto: Proto): Promise<Saturation> => {
    const w = WORKLOADS[workload];
    const before = proxyCpu();
    const sys = cpuTimes();
    const r = await watched(`${workload} ${proto}`, () =>
      proto === 'h1'
        ? wrk(ctx, path.h1, { connections: plan.connections, durationS: plan.durationS, workload: w })
        : h2load(ctx, path.h2, { clients: plan.h2Clients, streams: plan.h2Streams, durationS: plan.durationS, workload: w }),
    );
    const sysAfter = cpuTimes();
    const after = proxyCpu();
    result.proxies.forEach((p, i) => {
      (p.cpuUsPerRequest[workload] ??= {})[proto] = r.requests > 0 ? ((after[i]! - before[i]!) * 1000) / r.requests : NaN;
    });
    flag(result, `${workload} ${proto} saturation`, r.errors, r.non2xx, r.errorDetail, 0, r.requests);
    return { ...r, cpuBusy: { load: cpuPercent(sys, sysAfter, cpus.load, 'busy'), serve: cpuPercent(sys, sysAfter, cpus.serve, 'busy') } };
  };

  try {
    path.proxies.forEach((p, i) => (result.proxies[i]!.started = memory(p.pid)));
    if (plan.settleS > 0) {
      progress(`${name}: at rest for ${IDLE_WAIT_S}s (idle RSS)`);
      await delay(IDLE_WAIT_S * 1000);
    }
    path.proxies.forEach((p, i) => (result.proxies[i]!.idle = memory(p.pid)));
    result.backgroundCpuPercent = await quiet(plan.quietWaitS, () => progress(`${name}: waiting up to ${plan.quietWaitS}s for the machine to be idle`));

    progress(`${name}: warm-up ${plan.warmupS}s`);
    const warmCpu = proxyCpu();
    const warm = await wrk(ctx, path.h1, { connections: plan.connections, durationS: plan.warmupS });
    flag(result, 'warm-up', warm.errors, warm.non2xx, warm.errorDetail, 0, warm.requests);
    const warmAfter = proxyCpu();
    path.proxies.forEach((p, i) => {
      // A proxy that used no CPU while thousands of requests went by was not on the path.
      if (warmAfter[i]! - warmCpu[i]! <= 0) result.problems.push(`${p.side}-side proxy used no CPU during warm-up: traffic did not cross it`);
    });
    await delay(SETTLE_MS);

    for (const workload of plan.workloads) {
      const runs: WorkloadRuns = (result.saturation[workload] = {});
      progress(`${name}: ${workload} HTTP/1.1 saturation, wrk -t1 -c${plan.connections} -d${plan.durationS}s`);
      runs.h1 = await saturate(workload, 'h1');
      await delay(SETTLE_MS);

      progress(`${name}: ${workload} h2c saturation, h2load -c${plan.h2Clients} -m${plan.h2Streams} -D${plan.durationS}`);
      runs.h2 = await saturate(workload, 'h2');
      await delay(SETTLE_MS);
    }

    progress(`${name}: HTTP/1.1 at a fixed ${plan.rate} req/s for ${plan.rateWarmupS}s, then ${plan.durationS}s measured (tiny requests)`);
    const fixedCpu = proxyCpu();
    result.fixed = await watched('fixed', () =>
      fixedRate(ctx, path.h1, { rate: plan.rate, durationS: plan.durationS, connections: plan.rateConnections, warmupS: plan.rateWarmupS }),
    );
    const f = result.fixed;
    const fixedCpuAfter = proxyCpu();
    result.proxies.forEach((p, i) => (p.fixedCpuUsPerRequest = f.completed > 0 ? ((fixedCpuAfter[i]! - fixedCpu[i]!) * 1000) / f.completed : NaN));
    flag(result, 'fixed rate', f.errors, f.non2xx, f.firstError ?? '', f.timeouts, f.completed);
    path.proxies.forEach((p, i) => (result.proxies[i]!.loaded = memory(p.pid)));
    // A mesh proxy says when it gave memory back; those lines explain the readings around them.
    for (const p of path.proxies) {
      for (const line of p.process.output().split('\n')) if (line.includes('memory reclaimed')) progress(`${name}: ${p.side}-side proxy: ${line.trim()}`);
    }
    if (plan.settleS > 0) {
      progress(`${name}: quiet for ${plan.settleS}s (RSS settled)`);
      await delay(plan.settleS * 1000);
      path.proxies.forEach((p, i) => (result.proxies[i]!.settled = memory(p.pid)));
    }

    progress(`${name}: holding ${plan.idleConnections} idle connections`);
    const held = await holdConnections(ctx, path.h1, plan.idleConnections);
    // Every connection has answered a request, so every hop has set it up; a moment more lets
    // the proxies finish whatever they do after a response (buffers returned, timers armed).
    await delay(500);
    path.proxies.forEach((p, i) => (result.proxies[i]!.held = memory(p.pid)));
    const lostWhileHeld = await held.release();
    result.hold = { ...held.result, lostWhileHeld };
    if (held.result.failed > 0 || held.result.non2xx > 0 || lostWhileHeld !== 0) {
      result.problems.push(
        `idle connections: ${held.result.open} open, ${held.result.failed} failed, ${held.result.non2xx} non-2xx, ` +
          `${lostWhileHeld} dropped while held${held.result.firstError ? ` (${held.result.firstError})` : ''}`,
      );
    }

    const bulkEnd = t.bulk;
    if (bulkEnd && path.bulk) {
      await delay(SETTLE_MS);
      const mib = bulkEnd.bytes / 1048576;
      const transfer = transfersThrough(t, path.bulk);
      // A warm-up transfer first, as every load here has one: the opaque path's code is not what
      // the HTTP loads ran, and a JIT compiles it during its first seconds (measured: ~4% of a
      // mesh proxy's CPU in a 1 GiB transfer).
      progress(`${name}: opaque bulk warm-up, ${mib} MiB each way`);
      const warm = await transfer();
      if (!warm.intact) result.problems.push(`opaque bulk warm-up: ${warm.problem}`);
      progress(`${name}: opaque bulk, ${mib} MiB each way at once with half-close, to port ${path.bulk.port}`);
      const before = proxyCpu();
      const b = await watched('bulk', transfer);
      const after = proxyCpu();
      result.bulk = b;
      result.proxies.forEach((p, i) => (p.bulkCpuMsPerGiB = msPerGiB(after[i]! - before[i]!, bulkEnd.bytes)));
      if (!b.intact) result.problems.push(`opaque bulk: ${b.problem}`);
    }
  } catch (err) {
    result.problems.push(`run failed: ${(err as Error).message}`);
  } finally {
    // Numbers under a path's name count only if the path was what the name says (e.g. mTLS).
    if (path.confirm) {
      progress(`${name}: confirming the path is what its name says`);
      try {
        result.problems.push(...(await path.confirm()));
      } catch (err) {
        result.problems.push(`could not confirm the path: ${(err as Error).message}`);
      }
    }
    // A proxy that died mid-run explains any failure above; its last words say why.
    for (const p of path.proxies) {
      if (p.process.child.exitCode !== null || p.process.child.signalCode !== null) {
        const last = p.process.lines().slice(-8).join('\n    ');
        result.problems.push(`${p.side}-side proxy exited (code ${p.process.child.exitCode}, signal ${p.process.child.signalCode}); its last lines:\n    ${last}`);
      }
    }
    await path.down().catch((err: Error) => result.problems.push(`teardown: ${err.message}`));
  }
  return result;
}

function flag(result: PathResult, run: string, errors: number, non2xx: number, detail: string, timeouts: number, completed: number): void {
  if (completed === 0) result.problems.push(`${run}: no request completed (${detail})`);
  else if (errors > 0 || non2xx > 0 || timeouts > 0) {
    result.problems.push(`${run}: ${errors} socket errors, ${non2xx} non-2xx, ${timeouts} timeouts (${detail})`);
  }
}

/** Waits (bounded) for a quiet machine; returns the last background reading. */
async function quiet(waitS: number, waiting: () => void): Promise<number> {
  const until = Date.now() + waitS * 1000;
  let busy = await backgroundBusy(1000);
  if (busy > NOISY_PERCENT && Date.now() < until) waiting();
  while (busy > NOISY_PERCENT && Date.now() < until) busy = await backgroundBusy(1000);
  return busy;
}

/** Busy or stolen share of all CPUs over `ms` while the bench itself is idle: other work on the machine or host. */
async function backgroundBusy(ms: number): Promise<number> {
  const before = cpuTimes();
  await delay(ms);
  const after = cpuTimes();
  const all = [...after.keys()];
  return cpuPercent(before, after, all, 'busy') + cpuPercent(before, after, all, 'steal');
}
