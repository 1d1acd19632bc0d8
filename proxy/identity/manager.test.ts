// The manager driven by a fake clock and a fake identity service: every
// renewal, retry and backoff is asserted as a sequence, with no sleeping.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { inspectCsr } from '../../ca/index.js';
import type { Clock } from './clock.js';
import { IdentityManager, newWorkloadKey, type CertifyAnswer, type WorkloadCert } from './manager.js';
import { Backoff, refreshDelayMs } from './schedule.js';

const NAME = 'web.emojivoto.serviceaccount.identity.cluster.local';
const S = 1000;
const H = 3_600_000;

/** Timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = Date.parse('2030-01-01T00:00:00Z');
  timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #ids = 0;
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown): void => void (this.timers = this.timers.filter((x) => x.id !== id));
  /** The one pending timer's delay from now. */
  pending(): number {
    assert.equal(this.timers.length, 1, 'exactly one timer pending');
    return this.timers[0]!.at - this.t;
  }
  /** Jumps to the pending timer and fires it. */
  fire(): void {
    const next = this.timers.shift();
    assert.ok(next, 'a timer is pending');
    this.t = next.at;
    next.fn();
  }
}

/** An identity service whose answers the test scripts: a lifetime, or an error. */
function fakeService(clock: FakeClock) {
  const script: Array<number | Error> = [];
  const csrs: string[] = [];
  let n = 0;
  const certify = async (r: { identity: string; csrDer: Uint8Array }): Promise<CertifyAnswer> => {
    csrs.push(Buffer.from(r.csrDer).toString('hex'));
    const next = script.shift() ?? 24 * H;
    if (next instanceof Error) throw next;
    // The CA backdates notBefore by 20 s for clock skew.
    return { chainPem: `chain-${++n}`, notBefore: new Date(clock.t - 20 * S), notAfter: new Date(clock.t + next) };
  };
  let keys = 0;
  const newKey = async () => {
    const k = ++keys;
    return { csrDer: new Uint8Array([k]), keyPem: `key-${k}` };
  };
  return { script, csrs, certify, newKey };
}

function events(m: IdentityManager) {
  const seen: Array<{ kind: 'certified'; cert: WorkloadCert; in: number } | { kind: 'failed'; code: string; in: number }> = [];
  let wake: (() => void) | undefined;
  m.on('certified', (cert, ms) => { seen.push({ kind: 'certified', cert, in: ms }); wake?.(); });
  m.on('failed', (e, ms) => { seen.push({ kind: 'failed', code: e.code, in: ms }); wake?.(); });
  /** Resolves at the next outcome. */
  const next = async () => {
    const before = seen.length;
    while (seen.length === before) await new Promise<void>((r) => (wake = r));
    return seen[seen.length - 1]!;
  };
  return { seen, next };
}

function unreachable(): Error {
  return Object.assign(new Error('connect ECONNREFUSED'), { code: 'MESH_API_UNREACHABLE' });
}

describe('the schedule', () => {
  it('renews at 70% of notBefore → notAfter, clamped to 10 s .. 24 h', () => {
    const now = 1_000_000_000;
    assert.equal(refreshDelayMs(new Date(now), new Date(now + 10 * H), now), 7 * H);
    assert.equal(refreshDelayMs(new Date(now - 20 * S), new Date(now + 24 * H), now), Math.round(0.7 * (24 * H + 20 * S)) - 20 * S);
    assert.equal(refreshDelayMs(new Date(now - 20 * S), new Date(now + 4 * S), now), 10 * S, 'short lives: at least 10 s');
    assert.equal(refreshDelayMs(new Date(now - H), new Date(now - S), now), 10 * S, 'already expired: 10 s');
    assert.equal(refreshDelayMs(new Date(now), new Date(now + 365 * 24 * H), now), 24 * H, 'long lives: at most 24 h');
  });

  it('backs off 1 s doubling to 60 s, jittered downwards, and resets', () => {
    const exact = new Backoff(undefined, () => 0);
    assert.deepEqual(Array.from({ length: 9 }, () => exact.next()), [1, 2, 4, 8, 16, 32, 60, 60, 60].map((s) => s * S));
    exact.reset();
    assert.equal(exact.next(), S);
    const most = new Backoff(undefined, () => 1);
    assert.deepEqual([most.next(), most.next(), most.next()], [500, 1000, 2000]);
  });
});

describe('IdentityManager', () => {
  const setup = () => {
    const clock = new FakeClock();
    const svc = fakeService(clock);
    const m = new IdentityManager({ identity: NAME, certify: svc.certify, newKey: svc.newKey, clock, random: () => 0 });
    return { clock, svc, m, ev: events(m) };
  };

  it('is not ready until the first certificate, then holds it with its in-memory key', async () => {
    const { clock, svc, m, ev } = setup();
    assert.equal(m.ready(), false);
    assert.equal(m.current(), undefined);
    svc.script.push(10 * H);
    m.start();
    const e = await ev.next();
    assert.equal(e.kind, 'certified');
    assert.equal(m.ready(), true);
    assert.deepEqual(m.current(), { identity: NAME, chainPem: 'chain-1', keyPem: 'key-1', notBefore: new Date(clock.t - 20 * S), notAfter: new Date(clock.t + 10 * H) });
    m.stop();
  });

  it('renews at 70% of each lifetime, with a new key each time, clamped to 10 s', async () => {
    const { clock, svc, m, ev } = setup();
    svc.script.push(10 * H, 10 * H, 4 * S, 48 * H * 400);
    m.start();
    await ev.next();
    const lifetime = 10 * H + 20 * S;
    assert.equal(clock.pending(), Math.round(0.7 * lifetime) - 20 * S);
    clock.fire();
    assert.equal((await ev.next()).kind, 'certified');
    assert.equal(m.current()!.chainPem, 'chain-2');
    assert.equal(m.current()!.keyPem, 'key-2');
    clock.fire();
    await ev.next();
    assert.equal(clock.pending(), 10 * S, 'a 4 s certificate is renewed after the 10 s floor');
    clock.fire();
    await ev.next();
    assert.equal(clock.pending(), 24 * H, 'a very long certificate is renewed within a day');
    assert.equal(new Set(svc.csrs).size, 4, 'a fresh CSR for every request');
    m.stop();
    assert.equal(clock.timers.length, 0, 'stop clears the timer');
  });

  it('on failure keeps the old certificate and retries 1 s, 2 s, 4 s … 60 s, then renews normally', async () => {
    const { clock, svc, m, ev } = setup();
    svc.script.push(10 * H, ...Array.from({ length: 8 }, unreachable), 10 * H);
    m.start();
    await ev.next();
    const first = m.current();
    clock.fire();
    const retries: number[] = [];
    for (let i = 0; i < 8; i++) {
      const e = await ev.next();
      assert.equal(e.kind, 'failed');
      assert.equal(e.kind === 'failed' && e.code, 'MESH_API_UNREACHABLE');
      retries.push(e.in);
      assert.equal(clock.pending(), e.in);
      assert.equal(m.current(), first, 'still serving the previous certificate');
      assert.equal(m.ready(), true);
      clock.fire();
    }
    assert.deepEqual(retries, [1, 2, 4, 8, 16, 32, 60, 60].map((s) => s * S));
    const ok = await ev.next();
    assert.equal(ok.kind, 'certified');
    assert.notEqual(m.current(), first);
    assert.equal(clock.pending(), Math.round(0.7 * (10 * H + 20 * S)) - 20 * S, 'back on the 70% schedule');
    // The backoff starts over after a success.
    svc.script.push(unreachable());
    clock.fire();
    assert.equal((await ev.next()).in, S);
    m.stop();
  });

  it('retries the first certificate too, staying not ready; unknown throws get a code', async () => {
    const { clock, svc, m, ev } = setup();
    svc.script.push(new Error('boom'), 10 * H);
    m.start();
    const e = await ev.next();
    assert.deepEqual([e.kind, e.kind === 'failed' && e.code, e.in], ['failed', 'MESH_IDENTITY_FAILED', S]);
    assert.equal(m.ready(), false);
    clock.fire();
    assert.equal((await ev.next()).kind, 'certified');
    assert.equal(m.ready(), true);
    m.stop();
  });

  it('ignores an answer that lands after stop()', async () => {
    const clock = new FakeClock();
    let release!: (a: CertifyAnswer) => void;
    const m = new IdentityManager({
      identity: NAME,
      clock,
      newKey: async () => ({ csrDer: new Uint8Array([1]), keyPem: 'k' }),
      certify: () => new Promise((r) => (release = r)),
    });
    const ev = events(m);
    m.start();
    await new Promise((r) => setImmediate(r));
    m.stop();
    release({ chainPem: 'late', notBefore: new Date(clock.t), notAfter: new Date(clock.t + H) });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([ev.seen.length, m.current(), clock.timers.length], [0, undefined, 0]);
  });

  it('makes real keys: a new P-256 key and a CSR for exactly the identity each time', async () => {
    const [a, b] = [await newWorkloadKey(NAME), await newWorkloadKey(NAME)];
    assert.notEqual(a.keyPem, b.keyPem);
    assert.match(a.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    const [ia, ib] = [await inspectCsr(a.csrDer), await inspectCsr(b.csrDer)];
    assert.deepEqual([ia.dnsName, ib.dnsName], [NAME, NAME]);
    // The CSR carries the public half of the key handed to TLS.
    const spki = (k: string) => createPublicKey(createPrivateKey(k)).export({ type: 'spki', format: 'der' });
    assert.ok(spki(a.keyPem).equals(Buffer.from(ia.spki.toSchema().toBER(false))));
  });
});
