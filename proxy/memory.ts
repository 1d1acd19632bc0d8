// Memory handed back when a busy proxy falls quiet. Under load the V8 heap
// grows (old space fills with what survived the young generation) and glibc
// keeps the pages of freed socket buffers; neither shrinks by itself while the
// proxy idles (measured, bench/profile --settle: RSS 80-85 MB for 30 s after a
// realistic load, 9 MB of the server's heap free but kept). V8 is told memory
// is short (an incremental collection that compacts, in slices, not one long
// pause), and once it has run the C allocator's free pages go back, and so do
// the mappings of node's own executable that the load touched (they stay in the
// page cache; what is used again faults back without a disk read).
// When: judged by the process's own CPU time, event loop and request count, so
// the request path carries nothing new. Busy, some window used more than
// `busyShare` of a core; quiet, `calmWindows` windows in a row used under
// `quietShare`: once per busy-to-quiet change. A sidecar is rarely quiet
// (health checks, a trickle of requests), so there is a second rule: when load
// has fallen (`calmWindows` windows in a row with a quarter or less of the
// busiest window's requests since the last reclaim, the event loop unsaturated:
// busy under `saturatedLoop` of each) and RSS is over `softLimitBytes`, memory
// is reclaimed though traffic goes on (measured: 90-97 MB for as long as 1,000
// requests/s followed saturation, against 35-42 MB quiet). That one costs a
// collection under traffic, so it comes at most once per `minBusyIntervalMs`,
// and only when RSS has grown a quarter past what the last reclaim left
// (thousands of open connections are not garbage). Its cost, measured at 1,000
// requests/s (p99 over 20 s; 1.3 ms without it): the incremental collection
// slows the turns for a second or so, its last pause is 3-19 ms, and the
// executable's pages the traffic uses fault back; p99 rose by 0.4-1.3 ms. In
// one blocking pause instead (V8's critical pressure) it was worse: 14-37 ms
// pauses, p99 +1.8-3.2 ms. Without the executable's pages, RSS stayed 62-68 MB
// for the same p99 cost. Where that cost is (perf by half-second, --trace-deopt):
// not the collection itself (40-60 ms of incremental marking, a 7-13 ms last
// pause, a 1-2 ms trim, 4-6 ms to release the executable's pages: the `gc_ms`,
// `gc_pause_ms`, `trim_ms`, `release_ms` of the log line) but what follows it:
// V8 deoptimizes ~30 hot functions (ours and node's stream code) whose optimized
// code held maps of objects that died ("weak objects": shapes the saturating
// load's h2c and realistic clients used), and TurboFan compiles them again over
// ~2 s, 15-27% of the proxy's CPU. A plain full collection (not memory-reducing)
// does the same, with a 25-29 ms pause and RSS left at 73 MB.

// Requests, not CPU, tell the fall: at 1,000 requests/s a request costs ~8x
// its CPU at saturation (a wake-up each), so CPU fell only 2x from saturation.
// Windows in a row, not one: a window astride the gap between two bursts
// looks like a fall, and a reclaim there was paid for again by the next burst.
import { PROXY_DEFAULTS } from '../contract/sidecar.js';
import { holdAllocatorPages, memoryPressure, releaseFilePages, trimMemory } from '../native/index.js';
import { dropSealedBuffers } from './transport/sealed.js';
import { dropChunks } from './transport/chunks.js';
import { PerformanceObserver, constants as perfConstants, performance } from 'node:perf_hooks';
import type { Log } from './log.js';

export interface ReclaimOptions {
  /** How often CPU use, the loop and requests are looked at. */
  windowMs: number;
  /** A window above this share of one core makes the proxy busy. */
  busyShare: number;
  /** A window below it, after being busy, makes it quiet: memory is reclaimed. */
  quietShare: number;
  /** RSS above which memory is reclaimed under traffic too (unless the loop is saturated). */
  softLimitBytes: number;
  /** The event loop's busy share of a window (0..1) at and above which it is saturated: no reclaim under traffic. */
  saturatedLoop: number;
  /** The least time between two reclaims made under traffic. */
  minBusyIntervalMs: number;
  /**
   * How many windows in a row must be quiet, or show load fallen, before memory is reclaimed: a
   * window that straddles the gap between two bursts looks like a fall and is not one.
   */
  calmWindows: number;
}

// Quiet is under 1% of a core: an idle proxy's own timers (metrics sampling, sweeps) use
// 0.2-0.6% (measured), and a bound nearer that is missed on a busy host, so memory never came
// back; 1% is ~50 requests/s at this proxy's light-traffic cost (~200 µs a request, a wake-up
// each: bench, fixed rate), still traffic nobody should pause for.
// The soft limit: MESH_PROXY_MEMORY_SOFT_LIMIT_MIB's default (an idle proxy is ~50 MB, one
// settled after load 35-42 MB).
export const reclaimDefaults: Readonly<ReclaimOptions> = Object.freeze({
  // Two windows of 2.5 s: a reclaim comes 5 s into a calm, as with one 5 s window before.
  windowMs: 2_500,
  calmWindows: 2,
  busyShare: 0.05,
  quietShare: 0.01,
  softLimitBytes: PROXY_DEFAULTS.memorySoftLimitMiB * 1048576,
  saturatedLoop: 0.5,
  // Bursts with gaps already reclaim after each burst (quiet); under traffic, three a minute at most.
  minBusyIntervalMs: 20_000,
});

/** A reclaim under traffic needs RSS this much above what the last reclaim left. */
const REGROWTH = 1.25;
/** Load has fallen when a window has this many times fewer requests than the busiest since the last reclaim. */
const FALL = 4;

/**
 * The longest V8's incremental collection is waited for before the allocator is trimmed anyway
 * (measured: ~1 s on a 60 MB heap, more on 9,500 connections' 130 MB on a busy host).
 */
const COLLECT_MS = 10_000;
/** After the collection: the native memory of collected sockets is freed by callbacks that run just after it. */
const FINALIZE_MS = 200;

export interface Reclaimed {
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  /** Bytes of node's executable that were mapped and are now left to the page cache. */
  fileReleased: number;
  /** The longest GC pause while it ran (the collection's last, atomic step), ms. */
  pauseMs: number;
  /** From the start to the end of V8's collection (incremental: traffic is served meanwhile), ms. */
  collectMs: number;
  /** The C allocator's trim and the release of the executable's pages, each blocking the loop, ms. */
  trimMs: number;
  releaseMs: number;
}

/** Reclaims: V8's memory-reducing collection, then the C allocator's free pages and node's executable pages; what it gave back. */
export async function reclaim(collectMs = COLLECT_MS): Promise<Reclaimed> {
  const before = process.memoryUsage();
  // The sealed sessions' spare record buffers are garbage from here: the collection frees them.
  dropSealedBuffers();
  dropChunks();
  const t0 = performance.now();
  const collected = majorCollection(collectMs);
  memoryPressure();
  const pauseMs = await collected;
  const t1 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, FINALIZE_MS).unref());
  const t2 = performance.now();
  trimMemory();
  const t3 = performance.now();
  const fileReleased = releaseFilePages();
  const t4 = performance.now();
  const after = process.memoryUsage();
  return { rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heapTotal, heapAfter: after.heapTotal, fileReleased, pauseMs, collectMs: t1 - t0, trimMs: t3 - t2, releaseMs: t4 - t3 };
}

/**
 * At start: the C allocator keeps what is freed instead of trimming as it goes (it faulted the
 * same pages in again and again under bulk traffic); what it keeps goes back when this
 * module's reclaimer trims, after load.
 */
export function holdAllocator(log: Log): void {
  try {
    if (!holdAllocatorPages()) log.info('allocator left as it is (not glibc)');
  } catch (err) {
    log.warn('allocator left as it is', { error: (err as Error).message });
  }
}

/**
 * Start-up is over (listeners up, first certificate in hand): the pages of node's executable that
 * only start-up used (the V8 snapshot, code run once, the symbol tables the dynamic linker read)
 * are unmapped now, ~30 MB for ~3 ms; what the proxy uses from then on faults back from the page
 * cache. The heap waits for the reclaimer's first quiet window: its collection runs in slices.
 */
export function releaseStartup(log: Log): void {
  try {
    trimMemory();
    const released = releaseFilePages();
    log.info('start-up memory released', { file_released_mb: Math.round(released / 1048576), rss_mb: Math.round(process.memoryUsage.rss() / 1048576) });
  } catch (err) {
    log.warn('start-up memory not released', { error: (err as Error).message });
  }
}

/**
 * Resolves after V8's next full (mark-compact) collection, or after `timeoutMs`. The trim waits
 * for it: a fixed wait trimmed before a long collection ended on a large heap, and the native
 * memory it freed then (TLS state of thousands of closed sockets) stayed with the allocator.
 */
function majorCollection(timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let longest = 0;
    const done = (): void => {
      clearTimeout(timer);
      observer.disconnect();
      resolve(longest);
    };
    const observer = new PerformanceObserver((list) => {
      let major = false;
      for (const e of list.getEntries()) {
        if (e.duration > longest) longest = e.duration;
        if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) major = true;
      }
      if (major) done();
    });
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    observer.observe({ entryTypes: ['gc'] });
  });
}

/** What the reclaimer reads each window; injected so that tests drive it. */
export interface ReclaimSources {
  cpu(): NodeJS.CpuUsage;
  now(): number;
  /** Resident set size now, bytes. */
  rss(): number;
  /** The event loop's busy share (0..1) since the last call. */
  loopBusy(): number;
  /** Requests received so far (a counter). */
  requests(): number;
}

/** This process's readings; `requests` from the proxy's metrics. */
export function processSources(requests: () => number): ReclaimSources {
  let elu = performance.eventLoopUtilization();
  return {
    requests,
    cpu: () => process.cpuUsage(),
    now: () => performance.now(),
    rss: () => process.memoryUsage.rss(),
    loopBusy: () => {
      const next = performance.eventLoopUtilization();
      const share = performance.eventLoopUtilization(next, elu).utilization;
      elu = next;
      return share;
    },
  };
}

export class MemoryReclaimer {
  #timer: NodeJS.Timeout | undefined;
  /** Start-up (modules compiled, keys made, certificate fetched) counts as busy: its garbage goes too. */
  #busy = true;
  /** When the last reclaim under traffic started (clock of `now`). */
  #busyReclaimAt = -Infinity;
  /** RSS the last reclaim left. */
  #rssAfter = 0;
  /** The most requests a window has seen since the last reclaim, and the count at the window's start. */
  #peakRequests = 0;
  #lastRequests = 0;
  /** Windows in a row that were quiet, and that showed load fallen (unsaturated). */
  #quietRun = 0;
  #fallRun = 0;
  /** CPU time and clock at the start of the current window (set by start(), from the injected sources). */
  #last: NodeJS.CpuUsage = { user: 0, system: 0 };
  #lastAt = 0;

  constructor(
    private readonly log: Log,
    private readonly o: ReclaimOptions,
    private readonly src: ReclaimSources,
    private readonly act: () => Promise<Reclaimed> = () => reclaim(),
  ) {}

  start(): this {
    this.#last = this.src.cpu();
    this.#lastAt = this.src.now();
    this.src.loopBusy();
    this.#lastRequests = this.src.requests();
    this.#timer = setInterval(() => this.tick(), this.o.windowMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One window's verdict (the timer's; public so that tests drive it with their own clock and CPU). */
  tick(): Promise<Reclaimed> | undefined {
    const cpu = this.src.cpu();
    const at = this.src.now();
    const loop = this.src.loopBusy();
    const total = this.src.requests();
    const requests = total - this.#lastRequests;
    this.#lastRequests = total;
    const usedMs = (cpu.user - this.#last.user + cpu.system - this.#last.system) / 1000;
    const share = usedMs / Math.max(1, at - this.#lastAt);
    this.#last = cpu;
    this.#lastAt = at;
    this.#quietRun = share < this.o.quietShare ? this.#quietRun + 1 : 0;
    // Opaque-only traffic has no requests to fall: such a proxy reclaims when quiet.
    const fell = this.#peakRequests > 0 && requests * FALL <= this.#peakRequests && loop < this.o.saturatedLoop;
    this.#fallRun = fell ? this.#fallRun + 1 : 0;
    const quiet = this.#busy && this.#quietRun >= this.o.calmWindows;
    let over = false;
    if (!quiet && this.#fallRun >= this.o.calmWindows && at - this.#busyReclaimAt >= this.o.minBusyIntervalMs) {
      const rss = this.src.rss();
      over = rss > this.o.softLimitBytes && rss > this.#rssAfter * REGROWTH;
    }
    if (!quiet && !over) {
      if (share > this.o.busyShare) this.#busy = true;
      if (requests > this.#peakRequests) this.#peakRequests = requests;
      return undefined;
    }
    if (over) this.#busyReclaimAt = at;
    this.#busy = false;
    this.#peakRequests = requests;
    this.#quietRun = 0;
    this.#fallRun = 0;
    const mb = (b: number): number => Math.round(b / 1048576);
    const done = this.act();
    done.then(
      (r) => {
        this.#rssAfter = r.rssAfter;
        this.log.info('memory reclaimed after load', {
          after: quiet ? 'quiet' : 'load fell, over soft limit',
          rss_mb: `${mb(r.rssBefore)}->${mb(r.rssAfter)}`,
          heap_mb: `${mb(r.heapBefore)}->${mb(r.heapAfter)}`,
          file_released_mb: mb(r.fileReleased),
          gc_pause_ms: Math.round(r.pauseMs * 10) / 10,
          gc_ms: Math.round(r.collectMs),
          trim_ms: Math.round(r.trimMs * 10) / 10,
          release_ms: Math.round(r.releaseMs * 10) / 10,
        });
      },
      // No addon (it is loaded at start, so not expected): memory stays as it is.
      (err: Error) => this.log.warn('memory not reclaimed', { error: err.message }),
    );
    return done;
  }
}
