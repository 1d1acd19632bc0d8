// The stream table against a Map as the model: random opens and closes in any order, bursts that
// grow it and drain it, ids of both parities; every read agrees after every step.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamTable } from './stream-table.js';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function agree(t: StreamTable<{ id: number }>, model: Map<number, { id: number }>, probe: number[]): void {
  assert.equal(t.size, model.size);
  for (const id of probe) assert.equal(t.get(id), model.get(id), `get(${id})`);
  const got = t.values().map((v) => v.id).sort((a, b) => a - b);
  assert.deepEqual(got, [...model.keys()].sort((a, b) => a - b));
}

describe('StreamTable', () => {
  it('agrees with a Map through 200,000 random opens and closes, in bursts that grow and drain it', () => {
    const r = rng(7);
    const t = new StreamTable<{ id: number }>();
    const model = new Map<number, { id: number }>();
    let next = 1;
    const open: number[] = [];
    for (let step = 0; step < 200_000; step++) {
      // Phases: mostly opening (a burst of up to ~1,500 at once), then mostly closing.
      const opening = Math.floor(step / 20_000) % 2 === 0 ? r() < 0.6 : r() < 0.35;
      if (opening || open.length === 0) {
        const id = r() < 0.9 ? (next += 2) : 2 * Math.floor(r() * 1e6) + 2; // mostly consecutive odd ids, some even ones anywhere
        if (model.has(id)) continue;
        const v = { id };
        t.set(id, v);
        model.set(id, v);
        open.push(id);
      } else {
        // Any open stream may close: oldest, newest or one in between.
        const k = Math.floor(r() * open.length);
        const id = open[k]!;
        open[k] = open[open.length - 1]!;
        open.pop();
        assert.equal(t.delete(id), true);
        model.delete(id);
        assert.equal(t.delete(id), false, 'a second delete finds nothing');
      }
      if (step % 997 === 0) agree(t, model, [...open.slice(-20), next + 2, 1, 2]);
    }
    agree(t, model, open);
  });

  it('a long-lived stream among many short ones that wrap around the table is still found', () => {
    const t = new StreamTable<string>();
    t.set(1, 'long');
    for (let id = 3; id < 100_000; id += 2) {
      t.set(id, 'short');
      assert.equal(t.delete(id), true);
    }
    assert.equal(t.get(1), 'long');
    assert.equal(t.size, 1);
  });

  it('replaces a value under the same id; clear empties it; id 0 is refused', () => {
    const t = new StreamTable<string>();
    t.set(5, 'a').set(5, 'b');
    assert.equal(t.size, 1);
    assert.equal(t.get(5), 'b');
    t.clear();
    assert.equal(t.size, 0);
    assert.equal(t.get(5), undefined);
    assert.deepEqual(t.values(), []);
    assert.throws(() => t.set(0, 'x'), RangeError);
  });
});
