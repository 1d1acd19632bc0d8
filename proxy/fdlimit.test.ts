import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { raiseFdLimit } from '../native/index.js';
import { countOpenFds, FdBudget } from './fdlimit.js';

/** [soft, hard] as the kernel reports them for this process, independent of the addon. */
function kernelLimits(): [number, number] {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [, soft, hard] = /Max open files\s+(\d+)\s+(\d+)/.exec(line ?? '') ?? [];
  return [Number(soft), Number(hard)];
}

function hasPrlimit(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('raiseFdLimit', () => {
  it('leaves the soft limit at the hard one, and says so', () => {
    const { soft, hard } = raiseFdLimit();
    assert.equal(soft, hard);
    assert.ok(soft > 0);
    assert.deepEqual(kernelLimits(), [soft, hard]);
  });

  it('raises a lowered soft limit without privilege', { skip: !hasPrlimit() && 'no prlimit(1) to lower the limit with' }, () => {
    // Node already raised it at start-up, so lower it first (soft only: allowed for one's own process).
    execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=512:']);
    const [lowered, hard] = kernelLimits();
    assert.equal(lowered, 512);
    assert.deepEqual(raiseFdLimit(), { soft: hard, hard });
    assert.deepEqual(kernelLimits(), [hard, hard]);
  });
});

describe('FdBudget', () => {
  /** A budget over 200 descriptors, 150 open at start, keeping 10; the clock and the kernel count are ours. */
  function fake(open = 150) {
    const world = { open, counts: 0, now: 0 };
    const budget = new FdBudget({
      reserve: 10,
      raiseLimit: () => ({ soft: 200, hard: 200 }),
      countOpen: () => (world.counts++, world.open),
      now: () => world.now,
    });
    return { world, budget, start: budget.raise() };
  }

  it('reports what it started from', () => {
    const { start, world } = fake();
    assert.deepEqual(start, { soft: 200, hard: 200, open: 150, reserve: 10 });
    assert.equal(world.counts, 1);
  });

  it('accepts while the reserve is untouched, refuses past it, accepts again after a release', () => {
    const { budget, world } = fake();
    let accepted = 0;
    while (budget.canAccept()) budget.acquire(), accepted++;
    assert.equal(accepted, 40, '150 open + 40 leaves exactly the 10 kept');
    assert.equal(budget.remaining, 10);
    assert.equal(budget.canAccept(), false);
    budget.release();
    assert.equal(budget.canAccept(), true);
    assert.equal(world.counts, 1, 'the kernel was asked once, at start: the refusal came within the recount interval');
  });

  it('checks a refusal against the kernel at most once per interval', () => {
    const { budget, world } = fake();
    for (let i = 0; i < 40; i++) budget.acquire();
    world.now = 1000;
    world.open = 150; // 40 descriptors we counted were closed behind our back (say, a library's)
    assert.equal(budget.canAccept(), true);
    assert.equal(world.counts, 2);
    assert.equal(budget.remaining, 50);
    for (let i = 0; i < 40; i++) budget.acquire();
    world.open = 190;
    world.now = 1500;
    assert.equal(budget.canAccept(), false);
    assert.equal(world.counts, 2, 'not recounted within the second');
  });

  it('never estimates below what acquire() counted: a swing from one-descriptor clients to two-descriptor ones stays within the limit', () => {
    // Each connection acquires two; an HTTP client on a pooled upstream really holds one.
    let real = 20;
    let now = 0;
    const b = new FdBudget({ raiseLimit: () => ({ soft: 1024, hard: 1024 }), reserve: 64, countOpen: () => real, now: () => (now += 2000) });
    b.raise();
    let http = 0;
    while (b.canAccept()) b.acquire(), b.acquire(), real++, http++;
    // Half of them close (each releases its two), then opaque clients (two real descriptors each) come.
    for (let i = 0; i < http / 2; i++) b.release(), b.release(), real--;
    while (b.canAccept()) b.acquire(), b.acquire(), (real += 2);
    assert.ok(real <= 1024 - 64 + 2, `${real} descriptors open, limit 1024, reserve 64`);
    assert.ok(http >= (1024 - 64 - 20) / 2 - 1, `${http} HTTP clients admitted at first: two each, as charged`);
  });

  it('accepts everything until the limit is known, and never counts below zero', () => {
    const b = new FdBudget({ raiseLimit: () => ({ soft: 100, hard: 100 }), countOpen: () => 0 });
    assert.equal(b.canAccept(), true);
    b.raise();
    b.release();
    assert.equal(b.remaining, 100);
  });

  it('keeps max(64, 2% of the limit) by default', () => {
    const reserve = (soft: number) => new FdBudget({ raiseLimit: () => ({ soft, hard: soft }), countOpen: () => 0 }).raise().reserve;
    assert.equal(reserve(1024), 64);
    assert.equal(reserve(20_000), 400);
    assert.equal(reserve(1_048_576), 20_972);
  });

  it('starts from the real limit and the real count of open descriptors', () => {
    const before = countOpenFds();
    const start = new FdBudget().raise();
    assert.equal(start.soft, start.hard);
    assert.ok(Math.abs(start.open - before) <= 2, `${start.open} open now, ${before} a moment ago`);
    assert.equal(start.reserve, Math.max(64, Math.ceil(start.soft * 0.02)));
  });
});
