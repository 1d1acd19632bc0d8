// The balancer's parts, pure: fake clock, seeded randomness, no sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RESILIENCE_DEFAULTS as R } from '../../contract/destination.js';
import type { Connector } from '../connect/upstreams.js';
import { FailureAccrual } from './accrual.js';
import { RetryBudget } from './budget.js';
import { PeakEwma } from './ewma.js';
import { defaultEndpointStats, Endpoint } from './endpoint.js';
import { seededRandom } from '../fuzz-random.js';
import { P2cBalancer } from './p2c.js';

const seeded = seededRandom;

const noConnector = {} as Connector;
const stats = defaultEndpointStats;
const endpoint = (i: number, random: () => number): Endpoint => new Endpoint({ address: `10.0.0.${i}`, port: 80, family: 4 }, `10.0.0.${i}:80`, undefined, noConnector, stats(random), 0);

describe('peak EWMA', () => {
  it('starts at the default RTT and jumps to a slower sample at once', () => {
    const e = new PeakEwma(30, 10_000, 0);
    assert.equal(e.cost(0), 30);
    e.observe(200, 1);
    assert.equal(e.cost(1), 200);
  });

  it('moves toward faster samples with the decay, and decays toward zero while idle', () => {
    const e = new PeakEwma(30, 10_000, 0);
    e.observe(100, 0);
    e.observe(10, 10_000); // one decay period: weight e^-1 on the old value
    assert.ok(Math.abs(e.cost(10_000) - (100 * Math.exp(-1) + 10 * (1 - Math.exp(-1)))) < 1e-9);
    const before = e.cost(10_000);
    assert.ok(e.cost(30_000) < before / 5, 'an unused endpoint looks cheaper over time (it gets tried again)');
  });

  it('counts requests in flight in the load', () => {
    const e = new PeakEwma(30, 10_000, 0);
    e.pending = 3;
    assert.equal(e.load(0), 120);
  });
});

describe('failure accrual', () => {
  it('takes an endpoint out after 7 consecutive failures; a success in between resets the count', () => {
    const a = new FailureAccrual(stats(() => 0.5));
    for (let i = 0; i < 6; i++) a.failure(0);
    a.success();
    for (let i = 0; i < 6; i++) a.failure(0);
    assert.equal(a.state, 'ready');
    a.failure(0);
    assert.equal(a.state, 'failed');
    assert.equal(a.available(999), false);
  });

  it('probes after the backoff (1 s, with jitter), doubles it on a failed probe, caps it at 60 s, and recovers on success', () => {
    const a = new FailureAccrual(stats(() => 0.5)); // factor 1: no jitter
    for (let i = 0; i < 7; i++) a.failure(0);
    assert.equal(a.probeAt, 1000);
    assert.equal(a.available(1000), true);
    a.dispatched(1000);
    assert.equal(a.state, 'probing');
    assert.equal(a.available(1001), false, 'one probe at a time');
    a.failure(1500);
    assert.equal(a.probeAt, 3500);
    let t = 3500;
    for (let i = 0; i < 10; i++) {
      a.dispatched(t);
      a.failure(t);
      t = a.probeAt;
    }
    a.dispatched(t);
    a.failure(t);
    assert.equal(a.probeAt - t, 60_000);
    a.dispatched(a.probeAt);
    a.success();
    assert.equal(a.state, 'ready');
    for (let i = 0; i < 7; i++) a.failure(0);
    assert.equal(a.probeAt, 1000, 'back to the first backoff after a recovery');
  });

  it('a probe whose client gave up is handed back: the next request probes (it stayed probing, out of rotation, for good)', () => {
    const a = new FailureAccrual(stats(() => 0.5));
    for (let i = 0; i < 7; i++) a.failure(0);
    a.dispatched(1000);
    assert.equal(a.state, 'probing');
    a.abandoned();
    assert.equal(a.state, 'failed');
    assert.equal(a.available(1001), true, 'due again at once');
    a.dispatched(1001);
    a.success();
    assert.equal(a.state, 'ready');
    a.abandoned();
    assert.equal(a.state, 'ready', 'an abandoned request to a ready endpoint changes nothing');
  });

  it('jitters the wait within ±50%', () => {
    const low = new FailureAccrual(stats(() => 0));
    const high = new FailureAccrual(stats(() => 0.999999));
    for (let i = 0; i < 7; i++) {
      low.failure(0);
      high.failure(0);
    }
    assert.equal(low.probeAt, 500);
    assert.ok(high.probeAt > 1499 && high.probeAt < 1500);
  });
});

describe('retry budget', () => {
  const o = { ratio: R.retryBudgetRatio, minPerSecond: R.retryBudgetMinPerSecond, windowMs: R.retryBudgetWindowMs };

  it('allows the floor (10/s over the 10 s window) with no traffic, then refuses', () => {
    const b = new RetryBudget(o, 0);
    let n = 0;
    while (b.withdraw(0)) n++;
    assert.equal(n, 100);
  });

  it('allows 20% of requests on top of the floor', () => {
    const b = new RetryBudget(o, 0);
    for (let i = 0; i < 1000; i++) b.deposit(i);
    let n = 0;
    while (b.withdraw(1000)) n++;
    assert.equal(n, 100 + 200);
  });

  it('forgets what left the window', () => {
    const b = new RetryBudget(o, 0);
    for (let i = 0; i < 1000; i++) b.deposit(0);
    while (b.withdraw(0));
    assert.equal(b.withdraw(5000), false, 'still in the window');
    assert.equal(b.withdraw(10_500), true, 'a window later the retries and requests are gone: the floor again');
  });
});

describe('power of two choices', () => {
  it('sends to the faster of two endpoints most of the time, and still some to the slower', () => {
    const random = seeded(7);
    const [fast, slow] = [endpoint(1, random), endpoint(2, random)];
    const b = new P2cBalancer(random);
    b.endpoints = [fast, slow];
    const counts = new Map<Endpoint, number>([[fast, 0], [slow, 0]]);
    let now = 0;
    for (let i = 0; i < 2000; i++) {
      now += 5;
      const e = b.pick(now)!;
      counts.set(e, counts.get(e)! + 1);
      e.ewma!.observe(e === fast ? 2 : 52, now);
    }
    assert.ok(counts.get(fast)! > 10 * counts.get(slow)!, `fast ${counts.get(fast)} slow ${counts.get(slow)}`);
    assert.ok(counts.get(slow)! > 0, 'the slow one is tried again as its estimate decays');
  });

  it('spreads unmeasured endpoints (opaque connections) evenly by what is open on each', () => {
    const random = seeded(13);
    const eps = [1, 2, 3].map((i) => new Endpoint({ address: `10.0.0.${i}`, port: 80, family: 4 }, `10.0.0.${i}:80`, undefined, noConnector, stats(random), i * 5));
    const b = new P2cBalancer(random);
    b.endpoints = eps;
    const counts = eps.map(() => 0);
    for (let i = 0; i < 3000; i++) counts[eps.indexOf(b.pick(10_000 + i)!)]!++;
    for (const c of counts) assert.ok(c > 800 && c < 1200, counts.join(' '));
  });

  it('spreads evenly over equal endpoints', () => {
    const random = seeded(11);
    const eps = [1, 2, 3].map((i) => endpoint(i, random));
    const b = new P2cBalancer(random);
    b.endpoints = eps;
    const counts = new Map<Endpoint, number>(eps.map((e) => [e, 0]));
    for (let i = 0; i < 3000; i++) {
      const e = b.pick(i)!;
      counts.set(e, counts.get(e)! + 1);
      e.ewma!.observe(5, i);
    }
    for (const c of counts.values()) assert.ok(c > 700 && c < 1300, [...counts.values()].join(' '));
  });

  it('skips an endpoint taken out by failure accrual until its probe is due', () => {
    const random = seeded(3);
    const eps = [1, 2, 3].map((i) => endpoint(i, random));
    const b = new P2cBalancer(random);
    b.endpoints = eps;
    for (let i = 0; i < 7; i++) eps[0]!.accrual!.failure(0);
    for (let i = 0; i < 500; i++) assert.notEqual(b.pick(1), eps[0]);
    const due = eps[0]!.accrual!.probeAt;
    let probed = false;
    for (let i = 0; i < 100 && !probed; i++) probed = b.pick(due) === eps[0];
    assert.ok(probed, 'picked again once due');
  });

  it('with every endpoint out, still picks one: the one due soonest', () => {
    const random = seeded(5);
    const eps = [1, 2].map((i) => endpoint(i, random));
    const b = new P2cBalancer(random);
    b.endpoints = eps;
    for (const e of eps) for (let i = 0; i < 7; i++) e.accrual!.failure(0);
    const soonest = eps[0]!.accrual!.probeAt < eps[1]!.accrual!.probeAt ? eps[0] : eps[1];
    assert.equal(b.pick(1), soonest);
  });
});

describe('power of two choices, for a retry', () => {
  it('never picks the endpoint the previous attempt failed on when there is another', () => {
    const random = seeded(9);
    for (const n of [2, 3, 5]) {
      const eps = Array.from({ length: n }, (_, i) => endpoint(i + 1, random));
      const b = new P2cBalancer(random);
      b.endpoints = eps;
      for (let k = 0; k < 300; k++) {
        const avoid = eps[k % n]!;
        assert.notEqual(b.pick(k, avoid), avoid);
      }
    }
  });
});
