// When the proxy gives memory back: driven window by window with a made-up
// CPU clock; and the reclaim itself, for real, on this process's heap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Log } from './log.js';
import { MemoryReclaimer, reclaim, type Reclaimed } from './memory.js';

const WINDOW_MS = 5_000;

/** A reclaimer whose windows are `WINDOW_MS` long and use the CPU shares given to step(). */
function driven(leavesMb = 40) {
  let cpuUs = 0;
  let at = 0;
  let rssMb = 50;
  let loop = 0;
  let requests = 0;
  const done: Reclaimed[] = [];
  const logs: string[] = [];
  const r = new MemoryReclaimer(
    new Log('info', (l) => logs.push(l)),
    { windowMs: WINDOW_MS, busyShare: 0.05, quietShare: 0.005, softLimitBytes: 64 * 1048576, saturatedLoop: 0.5, minBusyIntervalMs: 60_000, calmWindows: 2 },
    { cpu: () => ({ user: cpuUs, system: 0 }), now: () => at, rss: () => rssMb * 1048576, loopBusy: () => loop, requests: () => requests },
    () => {
      // A reclaim leaves 40 MB by default (as measured after load).
      const one = { rssBefore: rssMb * 1048576, rssAfter: leavesMb * 1048576, heapBefore: 28 * 1048576, heapAfter: 14 * 1048576, fileReleased: 30 * 1048576, pauseMs: 3.2, collectMs: 900, trimMs: 1.5, releaseMs: 0.8 };
      rssMb = leavesMb;
      done.push(one);
      return Promise.resolve(one);
    },
  );
  r.start();
  r.stop(); // the test drives tick() itself
  /**
   * One window at `share` of a core, its event loop busy `o.loop` of it (default: saturated when
   * the share is over 30 %), `o.rps` requests a second (default: 50,000 a core, as at saturation),
   * RSS at `o.rssMb` (default: unchanged); true when it reclaimed.
   */
  const step = (share: number, o: { loop?: number; rssMb?: number; rps?: number } = {}): boolean => {
    cpuUs += share * WINDOW_MS * 1000;
    at += WINDOW_MS;
    requests += Math.round((o.rps ?? share * 50_000) * (WINDOW_MS / 1000));
    loop = o.loop ?? (share > 0.3 ? 0.95 : Math.min(1, share * 2));
    if (o.rssMb !== undefined) rssMb = o.rssMb;
    return r.tick() !== undefined;
  };
  /** Lets the reclaim's promise settle (it records what the reclaim left). */
  const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  return { step, done, logs, settled };
}

describe('memory reclaimer', () => {
  it('reclaims once when a busy proxy has been quiet two windows, and again only after it was busy again', async () => {
    const d = driven();
    d.step(0.5); // start-up is busy anyway; so is load
    d.step(0.8);
    assert.equal(d.step(0.001), false, 'one quiet window: maybe a gap between bursts');
    assert.equal(d.step(0.001), true, 'quiet after load');
    assert.equal(d.step(0.001), false, 'still quiet: nothing new to give back');
    assert.equal(d.step(0), false);
    d.step(0.3);
    assert.equal(d.step(0.002), false);
    assert.equal(d.step(0.5), false, 'the gap ended: load again');
    assert.equal(d.step(0.002), false);
    assert.equal(d.step(0.002), true, 'quiet after a second load');
    assert.equal(d.done.length, 2);
    await d.settled();
    assert.match(d.logs[0]!, / INFO memory reclaimed after load after=quiet rss_mb=50->40 heap_mb=28->14 file_released_mb=30 gc_pause_ms=3.2 gc_ms=900 trim_ms=1.5 release_ms=0.8\n$/);
  });

  it('never reclaims under traffic while RSS is under the soft limit, even after heavy load', () => {
    const d = driven();
    d.step(0.9, { rssMb: 63 });
    // 1 % of a core: ~50 requests/s at this proxy's light-traffic cost, not quiet.
    for (let i = 0; i < 20; i++) assert.equal(d.step(0.01), false);
    for (let i = 0; i < 20; i++) assert.equal(d.step(0.2), false);
    assert.equal(d.done.length, 0);
    assert.equal(d.step(0), false);
    assert.equal(d.step(0), true);
  });

  it('over the soft limit after load fell: reclaims under traffic, never while the loop is saturated, at most once a minute', async () => {
    const d = driven();
    for (let i = 0; i < 10; i++) assert.equal(d.step(0.4, { rssMb: 95 }), false, 'saturated: no pause, however large');
    // 1,000 requests/s costs a fifth of a core (a wake-up each): CPU halved, requests fell 20x.
    const light = { loop: 0.2, rps: 1000 };
    assert.equal(d.step(0.2, light), false, 'one window: maybe astride a gap');
    assert.equal(d.step(0.2, light), true, 'load fell; over the limit');
    await d.settled();
    assert.match(d.logs[0]!, / INFO memory reclaimed after load after="load fell, over soft limit" rss_mb=95->40 /);
    // It grows again under the same light traffic: that is what this load needs, not garbage.
    for (let i = 0; i < 12; i++) assert.equal(d.step(0.2, { ...light, rssMb: 80 }), false, 'no new fall');
    // Bursts a window long with a window's gap between: no fall lasts, nothing reclaimed.
    for (let i = 0; i < 24; i++) assert.equal(d.step(i % 2 === 0 ? 0.4 : 0.2, i % 2 === 0 ? { rssMb: 85 } : light), false, `window ${i}`);
    // A burst, then two light windows, over and over: one reclaim a minute (12 windows of 5 s).
    const fell: number[] = [];
    for (let i = 0; i < 40; i++) if (d.step(i % 3 === 0 ? 0.4 : 0.2, i % 3 === 0 ? { rssMb: 85 } : light)) fell.push(i);
    assert.deepEqual(fell, [2, 14, 26, 38]);
  });

  it('under traffic, reclaims neither a moderate load\'s memory nor open connections\' (not garbage)', async () => {
    const d = driven();
    d.step(0.5);
    d.step(0.001);
    assert.equal(d.step(0.001), true, 'quiet after start-up');
    // Moderate load, unsaturated, over the limit: no fall, no reclaim.
    for (let i = 0; i < 12; i++) assert.equal(d.step(0.2, { loop: 0.3, rps: 3000, rssMb: 80 }), false);
    // After a fall that left 100 MB (the connections' own): 120 MB is under a quarter more.
    const held = driven(100);
    const light = { loop: 0.2, rps: 1000 };
    held.step(0.4, { rssMb: 140 });
    held.step(0.2, light);
    assert.equal(held.step(0.2, light), true);
    await held.settled();
    held.step(0.4, { rssMb: 120 });
    for (let i = 0; i < 20; i++) assert.equal(held.step(0.2, light), false, i < 12 ? 'within the minute' : '120 MB is not 125');
    held.step(0.4, { rssMb: 126 });
    assert.equal(held.step(0.2, light), false);
    assert.equal(held.step(0.2, light), true);
    // Opaque traffic only (no requests): no fall to see; quiet still reclaims.
    const opaque = driven();
    opaque.step(0.5, { rps: 0 });
    for (let i = 0; i < 12; i++) assert.equal(opaque.step(0.1, { loop: 0.2, rps: 0, rssMb: 90 }), false);
    opaque.step(0, { rps: 0 });
    assert.equal(opaque.step(0, { rps: 0 }), true);
  });

  it('start-up counts as busy: the first quiet after it reclaims', () => {
    const d = driven();
    assert.equal(d.step(0.001), false);
    assert.equal(d.step(0.001), true);
    assert.equal(d.step(0.001), false);
  });

  it('reclaim() gives back the real heap: garbage made here is collected and its pages released', async () => {
    let junk: object[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `x${i}` }));
    assert.equal(junk.length, 300_000);
    junk = undefined;
    // The incremental collection runs in slices between turns; the timer stands in for traffic.
    let longest = 0;
    let last = performance.now();
    const beat = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 2);
    const r = await reclaim(1500);
    clearInterval(beat);
    assert.ok(r.heapAfter < r.heapBefore - 8 * 1048576, `heap ${r.heapBefore} -> ${r.heapAfter}`);
    assert.ok(longest < 100, `the event loop stalled ${longest} ms`);
    // The pause it reports is a real one, and no longer than the longest gap the timer saw.
    assert.ok(r.pauseMs > 0 && r.pauseMs <= longest + 1, `pause ${r.pauseMs} ms, longest gap ${longest} ms`);
  });

  it('reclaim() trims once the full collection is done, not after its whole bound', async () => {
    let junk: object[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    assert.equal(junk.length, 200_000);
    junk = undefined;
    // The reclaim's own timers do not hold the process open (a proxy's listeners do): this does.
    const alive = setInterval(() => {}, 1000);
    const started = performance.now();
    const r = await reclaim(10_000);
    const took = performance.now() - started;
    clearInterval(alive);
    assert.ok(took < 5_000, `reclaim took ${Math.round(took)} ms: the collection's end was not seen`);
    assert.ok(r.heapAfter < r.heapBefore, `heap ${r.heapBefore} -> ${r.heapAfter}`);
  });
});
