// Memory handed back when a busy proxy falls quiet. Under load the V8 heap
// grows (old space fills with what survived the young generation) and glibc
// keeps the pages of freed socket buffers; neither shrinks by itself while the
// proxy idles (measured, bench/profile --settle: RSS 80-85 MB for 30 s after a
// realistic load, 9 MB of the server's heap free but kept). V8 is told memory
// is short (an incremental collection that compacts, in slices, not one long
// pause), and once it has run the C allocator's free pages go back, and so do
// the mappings of node's own executable that the load touched (they stay in the
// page cache; what is used again faults back without a disk read).
// Judged by the process's own CPU time, so the request path carries nothing:
// busy, some window used more than `busyShare` of a core; quiet, the last
// window used under `quietShare`. Once per busy-to-quiet change, never under load.
import { memoryPressure, releaseFilePages, trimMemory } from '../native/index.js';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { Log } from './log.js';

export interface ReclaimOptions {
  /** How often CPU use is looked at. */
  windowMs: number;
  /** A window above this share of one core makes the proxy busy. */
  busyShare: number;
  /** A window below it, after being busy, makes it quiet: memory is reclaimed. */
  quietShare: number;
}

// Quiet is under 1% of a core: an idle proxy's own timers (metrics sampling, sweeps) use
// 0.2-0.6% (measured), and a bound nearer that is missed on a busy host, so memory never came
// back; 1% is ~500 requests/s at this proxy's cost, still traffic nobody should pause for.
export const reclaimDefaults: Readonly<ReclaimOptions> = Object.freeze({ windowMs: 5_000, busyShare: 0.05, quietShare: 0.01 });

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
}

/** Reclaims: V8's memory-reducing collection, then the C allocator's free pages and node's executable pages; what it gave back. */
export async function reclaim(collectMs = COLLECT_MS): Promise<Reclaimed> {
  const before = process.memoryUsage();
  const collected = majorCollection(collectMs);
  memoryPressure();
  await collected;
  await new Promise((resolve) => setTimeout(resolve, FINALIZE_MS).unref());
  trimMemory();
  const fileReleased = releaseFilePages();
  const after = process.memoryUsage();
  return { rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heapTotal, heapAfter: after.heapTotal, fileReleased };
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
function majorCollection(timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      observer.disconnect();
      resolve();
    };
    const observer = new PerformanceObserver((list) => {
      if (list.getEntries().some((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)) done();
    });
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    observer.observe({ entryTypes: ['gc'] });
  });
}

export class MemoryReclaimer {
  #timer: NodeJS.Timeout | undefined;
  /** Start-up (modules compiled, keys made, certificate fetched) counts as busy: its garbage goes too. */
  #busy = true;
  /** CPU time and clock at the start of the current window (set by start(), from the injected sources). */
  #last: NodeJS.CpuUsage = { user: 0, system: 0 };
  #lastAt = 0;

  constructor(
    private readonly log: Log,
    private readonly o: ReclaimOptions = reclaimDefaults,
    private readonly cpu: () => NodeJS.CpuUsage = () => process.cpuUsage(),
    private readonly now: () => number = () => performance.now(),
    private readonly act: () => Promise<Reclaimed> = () => reclaim(),
  ) {}

  start(): this {
    this.#last = this.cpu();
    this.#lastAt = this.now();
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
    const cpu = this.cpu();
    const at = this.now();
    const usedMs = (cpu.user - this.#last.user + cpu.system - this.#last.system) / 1000;
    const share = usedMs / Math.max(1, at - this.#lastAt);
    this.#last = cpu;
    this.#lastAt = at;
    if (share > this.o.busyShare) {
      this.#busy = true;
      return undefined;
    }
    if (!this.#busy || share >= this.o.quietShare) return undefined;
    this.#busy = false;
    const mb = (b: number): number => Math.round(b / 1048576);
    const done = this.act();
    done.then(
      (r) => this.log.info('memory reclaimed after load', { rss_mb: `${mb(r.rssBefore)}->${mb(r.rssAfter)}`, heap_mb: `${mb(r.heapBefore)}->${mb(r.heapAfter)}`, file_released_mb: mb(r.fileReleased) }),
      // No addon (it is loaded at start, so not expected): memory stays as it is.
      (err: Error) => this.log.warn('memory not reclaimed', { error: err.message }),
    );
    return done;
  }
}
