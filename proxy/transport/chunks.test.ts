// Recycled chunks: a chunk comes back only once every byte handed out was spent, whatever
// views they were spent through; views of anything else are ignored.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { beforeEach, describe, it } from 'node:test';
import { armChunk, armedChunks, CHUNK_BYTES, CHUNK_MIN, disarm, dropChunks, freeChunks, giveBack, handOut, isLent, landed, READ_SPAN, spent, spentAll, takeChunk } from './chunks.js';

describe('recycled chunks', () => {
  beforeEach(dropChunks);

  it('a chunk comes back once the views of all its handed-out bytes were spent, not before', () => {
    const c = takeChunk();
    assert.equal(c.length, CHUNK_BYTES);
    handOut(c, 10_000);
    const whole = c.subarray(0, 10_000);
    assert.ok(isLent(whole) && isLent(c.subarray(5, 6)));
    // Spent in three parts (a payload framed in pieces as the window allowed).
    spent(whole.subarray(0, 4000));
    spent(whole.subarray(4000, 9999));
    assert.equal(freeChunks(), 0, 'one byte is still out');
    spent(whole.subarray(9999));
    assert.equal(freeChunks(), 1);
    assert.ok(!isLent(whole), 'no longer lent once back');
    assert.equal(takeChunk(), c, 'the same memory is taken again');
  });

  it('ignores views of anything but a handed-out chunk, and a chunk spent after it came back', () => {
    spent(Buffer.alloc(100));
    spent(Buffer.allocUnsafe(70_000));
    spentAll([Buffer.from('slab'), Buffer.alloc(0)]);
    assert.equal(freeChunks(), 0);
    const c = takeChunk();
    handOut(c, 100);
    spent(c.subarray(0, 100));
    assert.equal(freeChunks(), 1);
    // A second spend of the same bytes (a bug elsewhere) must not put the chunk on the list twice.
    spent(c.subarray(0, 100));
    assert.equal(freeChunks(), 1);
  });

  it('a chunk taken and given back unused, or handed out with nothing, is free again; the list is bounded', () => {
    const a = takeChunk();
    giveBack(a);
    assert.equal(freeChunks(), 1);
    const b = takeChunk();
    handOut(b, 0);
    assert.equal(freeChunks(), 1);
    for (let i = 0; i < 200; i++) giveBack(Buffer.allocUnsafeSlow(CHUNK_BYTES));
    assert.ok(freeChunks() <= 64, `at most 64 kept, not ${freeChunks()}`);
    dropChunks();
    assert.equal(freeChunks(), 0);
  });

  it('spentAll spends each piece of a flushed turn', () => {
    const c = takeChunk();
    handOut(c, 300);
    spentAll([Buffer.from('header'), c.subarray(0, 100), c.subarray(100, 300)]);
    assert.equal(freeChunks(), 1);
  });

  it('chunks placed for reads: capped for the process; a long read is handed out where it landed, a short one copied and its chunk freed', () => {
    const placed: Buffer[] = [];
    for (let c = armChunk(); c !== undefined; c = armChunk()) placed.push(c);
    assert.equal(placed.length, 64, 'at most 64 chunks wait for reads at once');
    // A read is given one DATA frame's worth (64 KiB), not the whole chunk: a read of all 64 KiB + 16
    // went on as a full frame and a 16-byte one.
    assert.ok(placed.every((c) => c.length === READ_SPAN && c.buffer.byteLength === CHUNK_BYTES));
    assert.equal(armedChunks().armed, 64);
    // A long read: its bytes go on in the chunk itself, lent until spent.
    const long = placed.pop()!;
    long.fill(7, 0, CHUNK_MIN);
    const view = landed(long, CHUNK_MIN);
    assert.equal(view.buffer, long.buffer);
    assert.equal(view.length, CHUNK_MIN);
    assert.ok(isLent(view));
    const next = armChunk();
    assert.notEqual(next, undefined, 'a landed read frees a place');
    placed.push(next!);
    // A short read: copied out, the chunk back on the free list at once.
    const short = placed.pop()!;
    short.write('hello');
    const free = freeChunks();
    const copy = landed(short, 5);
    assert.notEqual(copy.buffer, short.buffer);
    assert.equal(copy.toString(), 'hello');
    assert.equal(freeChunks(), free + 1);
    // The rest never saw a read (their sockets closed).
    for (const c of placed) disarm(c);
    assert.equal(armedChunks().armed, 0);
    spent(view);
    // Each went back whole: the free list hands out chunks a 64 KiB frame and its header fit in.
    for (let i = freeChunks(); i > 0; i--) assert.equal(takeChunk().length, CHUNK_BYTES);
  });
});
