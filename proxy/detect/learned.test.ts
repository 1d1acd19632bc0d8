import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerFirstMemory } from './learned.js';

describe('server-first memory', () => {
  const clock = (): { now: () => number; advance(ms: number): void } => {
    let t = 1_000;
    return { now: () => t, advance: (ms) => void (t += ms) };
  };

  it('learns once: a second sighting is not news', () => {
    const m = new ServerFirstMemory(10, 60_000);
    assert.equal(m.has('10.0.0.7:3307'), false);
    assert.equal(m.learn('10.0.0.7:3307'), true);
    assert.equal(m.learn('10.0.0.7:3307'), false);
    assert.equal(m.has('10.0.0.7:3307'), true);
    assert.equal(m.has('10.0.0.7:3308'), false);
  });

  it('is bounded: the least recently confirmed is forgotten first', () => {
    const m = new ServerFirstMemory(3, 60_000);
    for (const k of ['a:1', 'b:1', 'c:1']) m.learn(k);
    m.learn('a:1'); // confirmed again: now the newest
    m.learn('d:1');
    assert.equal(m.size, 3);
    assert.deepEqual(['a:1', 'b:1', 'c:1', 'd:1'].map((k) => m.has(k)), [true, false, true, true]);
  });

  it('expires; each confirmation extends it', () => {
    const c = clock();
    const m = new ServerFirstMemory(10, 1_000, c.now);
    m.learn('a:1');
    c.advance(900);
    m.learn('a:1');
    c.advance(900);
    assert.equal(m.has('a:1'), true, 'confirmed 900 ms ago, ttl 1000');
    c.advance(100);
    assert.equal(m.has('a:1'), false, 'expired exactly at its ttl');
    assert.equal(m.size, 0, 'an expired entry is dropped when seen');
    assert.equal(m.learn('a:1'), true, 'learned afresh after expiry');
  });

  it('forgets a destination whose client spoke first, and re-learns it', () => {
    const m = new ServerFirstMemory(10, 60_000);
    m.learn('a:1');
    assert.equal(m.forget('a:1'), true);
    assert.equal(m.forget('a:1'), false);
    assert.equal(m.has('a:1'), false);
    assert.equal(m.learn('a:1'), true);
  });

  it('capacity 0 remembers nothing', () => {
    const m = new ServerFirstMemory(0, 60_000);
    assert.equal(m.learn('a:1'), false);
    assert.equal(m.has('a:1'), false);
  });
});
