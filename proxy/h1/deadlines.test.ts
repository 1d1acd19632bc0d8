// The deadline sweep: what it fires, and that many deadlines due together are
// fired a batch per event-loop turn, with nothing fired twice or missed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines, type Expiring } from './deadlines.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class Entry implements Expiring {
  fired = 0;
  constructor(
    private readonly owner: Deadlines,
    public deadline: number,
  ) {
    owner.add(this);
  }
  expire(): void {
    this.fired++;
    // As the HTTP/1 connections do: an expired entry closes and leaves the registry.
    this.owner.delete(this);
  }
}

describe('Deadlines', () => {
  it('fires what is due and nothing else', () => {
    let now = 0;
    const d = new Deadlines({ manual: true, clock: () => now });
    const due = new Entry(d, 100);
    const later = new Entry(d, 300);
    const never = new Entry(d, Infinity);
    d.sweep((now = 200));
    assert.deepEqual([due.fired, later.fired, never.fired], [1, 0, 0]);
    assert.equal(d.size, 2);
    assert.equal(d.now, 200);
  });

  it('a manual sweep fires everything due at once unless told a batch size', () => {
    const d = new Deadlines({ manual: true, clock: () => 0 });
    const all = Array.from({ length: 500 }, () => new Entry(d, 1));
    d.sweep(10);
    assert.equal(all.filter((e) => e.fired === 1).length, 500);
    assert.equal(d.sweeping, false);
  });

  it('500 due together: 64 a turn, each exactly once, with turns for I/O between', async () => {
    const d = new Deadlines({ manual: true, clock: () => 0, perTurn: 64 });
    const all = Array.from({ length: 500 }, () => new Entry(d, 1));
    const fired = (): number => all.filter((e) => e.fired > 0).length;
    d.sweep(10);
    assert.equal(fired(), 64, 'the first batch, in the sweep itself');
    assert.equal(d.sweeping, true);
    await turn();
    assert.equal(fired(), 128, 'one batch a turn');
    // A sweep due meanwhile does not start a second pass over the same entries.
    d.sweep(20);
    assert.equal(fired(), 128);
    while (d.sweeping) await turn();
    assert.equal(fired(), 500);
    assert.ok(all.every((e) => e.fired === 1), 'none fired twice');
    assert.equal(d.size, 0);
  });

  it('a yielded sweep skips entries cleared or removed meanwhile and reaches entries added meanwhile', async () => {
    const d = new Deadlines({ manual: true, clock: () => 0, perTurn: 10 });
    const all = Array.from({ length: 30 }, () => new Entry(d, 1));
    d.sweep(10);
    assert.equal(d.sweeping, true);
    // Entry 20 got its request (deadline cleared); 25 closed by itself; a new one is already late.
    all[20]!.deadline = Infinity;
    d.delete(all[25]!);
    const added = new Entry(d, 5);
    while (d.sweeping) await turn();
    assert.equal(all[20]!.fired, 0);
    assert.equal(all[25]!.fired, 0);
    assert.equal(added.fired, 1);
    assert.equal(all.filter((e) => e.fired === 1).length, 28);
    // The next sweep starts over and sees the same state.
    d.sweep(20);
    assert.equal(all[20]!.fired, 0);
  });

  it('a running sweep goes on with the latest time it was given', async () => {
    const d = new Deadlines({ manual: true, clock: () => 0, perTurn: 1 });
    const early = [new Entry(d, 1), new Entry(d, 1)];
    const late = new Entry(d, 15);
    d.sweep(10);
    assert.equal(early[0]!.fired, 1);
    d.sweep(20); // now past `late` too
    while (d.sweeping) await turn();
    assert.deepEqual([early[1]!.fired, late.fired], [1, 1]);
  });
});
