// Read buffers collected on time (proxy/gc.ts): the budget's counting, and that the collector
// it uses on this node really runs a young collection.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';
import { ReadBudget, youngCollector } from './gc.js';

describe('ReadBudget', () => {
  it('collects once the bytes read reach the budget, at the end of the turn, and counts again from zero', async () => {
    let runs = 0;
    const b = new ReadBudget(1000, () => runs++);
    b.note(600);
    b.note(399);
    await turn();
    assert.equal(runs, 0, 'under the budget: nothing');
    b.note(1);
    assert.equal(runs, 0, 'not inside the read that crossed it');
    await turn();
    assert.equal(runs, 1);
    b.note(999);
    await turn();
    assert.equal(runs, 1, 'the count started again after the collection');
    b.note(1);
    await turn();
    assert.equal(runs, 2);
  });

  it('asks for one collection however many reads cross the budget in one turn', async () => {
    let runs = 0;
    const b = new ReadBudget(100, () => runs++);
    for (let i = 0; i < 50; i++) b.note(64);
    await turn();
    assert.equal(runs, 1);
  });
});

describe('youngCollector', () => {
  it('runs a young (minor) collection on this node, there and then', async () => {
    const collect = youngCollector();
    assert.ok(collect, 'the collector is available');
    let t0 = 0;
    let t1 = 0;
    // The entry of a minor collection that started during the call (not one V8 made on its own).
    // The entry comes after the call, from a task node queues: a bound that also keeps the loop alive till then.
    let guard: NodeJS.Timeout | undefined;
    const seen = new Promise<void>((resolve, reject) => {
      guard = setTimeout(() => reject(new Error('no minor collection seen during the call')), 5000);
      const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          const minor = (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR;
          if (minor && e.startTime >= t0 && e.startTime <= t1) {
            obs.disconnect();
            clearTimeout(guard);
            resolve();
          }
        }
      });
      obs.observe({ entryTypes: ['gc'] });
    });
    t0 = performance.now();
    collect();
    t1 = performance.now();
    await seen;
    assert.equal('gc' in globalThis, false, 'the gc function stays out of the proxy\'s globals');
  });
});
