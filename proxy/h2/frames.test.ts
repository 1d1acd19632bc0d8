import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as F from './frames.js';
import { handOut, isLent, recycledChunks, spent, spentAll, takeChunk } from '../transport/chunks.js';

interface Seen {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

function reader(): { r: F.FrameReader; seen: Seen[] } {
  const seen: Seen[] = [];
  const r = new F.FrameReader({ onFrame: (type, flags, id, payload) => seen.push({ type, flags, id, payload: Buffer.from(payload) }) });
  return { r, seen };
}

function sample(): Buffer {
  const w = new F.FrameWriter();
  w.settings([F.SETTINGS_MAX_CONCURRENT_STREAMS, 100, F.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20]);
  w.settingsAck();
  w.headers(1, Buffer.alloc(40000, 7), false, 16384); // HEADERS + 2 CONTINUATION
  w.data(1, Buffer.from('hello world'), 6, 5, true);
  w.rst(3, 8);
  w.ping(false, Buffer.from('12345678'));
  w.goaway(5, 0, 'bye');
  w.windowUpdate(0, 1000);
  w.raw(0xfa, 0, 0, Buffer.from('unknown'));
  return Buffer.from(w.take()!);
}

test('frames: every writer frame reads back, whole and at every split point', () => {
  const all = sample();
  const { r, seen } = reader();
  assert.equal(r.push(all), 0);
  assert.deepEqual(
    seen.map((s) => [s.type, s.flags, s.id, s.payload.length]),
    [
      [F.SETTINGS, 0, 0, 12], [F.SETTINGS, F.FLAG_ACK, 0, 0],
      [F.HEADERS, 0, 1, 16384], [F.CONTINUATION, 0, 1, 16384], [F.CONTINUATION, F.FLAG_END_HEADERS, 1, 40000 - 32768],
      [F.DATA, F.FLAG_END_STREAM, 1, 5], [F.RST_STREAM, 0, 3, 4], [F.PING, 0, 0, 8], [F.GOAWAY, 0, 0, 11],
      [F.WINDOW_UPDATE, 0, 0, 4], [0xfa, 0, 0, 7],
    ],
  );
  assert.equal(seen[5]!.payload.toString(), 'world');
  assert.equal(seen[6]!.payload.readUInt32BE(0), 8);
  assert.equal(seen[8]!.payload.subarray(8).toString(), 'bye');
  for (let cut = 1; cut < all.length; cut += 997) {
    for (const step of [1, 3, 9, 10, 4096]) {
      if (step === 1 && cut > 200) continue; // byte-at-a-time only near the start: slow
      const got = reader();
      assert.equal(got.r.push(all.subarray(0, cut)), 0);
      for (let i = cut; i < all.length; i += step) assert.equal(got.r.push(all.subarray(i, Math.min(all.length, i + step))), 0);
      assert.deepEqual(got.seen, seen, `cut ${cut} step ${step}`);
      assert.equal(got.r.pending, 0);
    }
  }
});

test('frames: a DATA frame split across reads as TLS delivers them arrives whole, once, END_STREAM set, in memory of its own', () => {
  const payload = Buffer.alloc(40_000);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const w = new F.FrameWriter();
  w.data(3, payload, 0, payload.length, true);
  w.ping(false, Buffer.from('12345678'));
  const bytes = Buffer.from(w.take()!);
  const data: Array<{ flags: number; id: number; payload: Buffer }> = [];
  const reads: Buffer[] = [];
  const r = new F.FrameReader({ onFrame: (type, flags, id, p) => void (type === F.DATA ? data.push({ flags, id, payload: p }) : reads.push(p)) });
  r.maxFrameSize = 1 << 20;
  // Reads as TLS delivers them, 16 KiB each; the first leaves the frame's header incomplete too.
  const cuts = [5, 16384, 32768, bytes.length];
  let from = 0;
  const chunks: Buffer[] = [];
  for (const to of cuts) {
    const c = Buffer.from(bytes.subarray(from, to));
    chunks.push(c);
    assert.equal(r.push(c), 0);
    from = to;
  }
  assert.deepEqual(data.map((d) => [d.id, d.flags & F.FLAG_END_STREAM]), [[3, F.FLAG_END_STREAM]]);
  assert.deepEqual(data[0]!.payload, payload);
  assert.ok(chunks.every((c) => c.buffer !== data[0]!.payload.buffer), 'gathered in memory of its own, not a view of a read');
  assert.equal(reads.length, 1, 'the PING after it is read whole');
  assert.equal(r.pending, 0);
});

/** A reader fed views of one buffer that each push overwrites (as reads.ts's shared buffer is). */
function viewedFeed(r: F.FrameReader): (bytes: Buffer) => number {
  const shared = Buffer.alloc(64 * 1024);
  return (bytes) => {
    bytes.copy(shared);
    const code = r.push(shared.subarray(0, bytes.length));
    shared.fill(0xee); // the next read of any socket
    return code;
  };
}

test('frames: fed through one overwritten buffer, every frame reads back at every split point, each DATA frame whole and in memory of its own', () => {
  const all = sample();
  const { r: ref, seen } = reader();
  assert.equal(ref.push(all), 0);
  for (const step of [1, 7, 9, 10, 100, 4096, 16384, 65536]) {
    const got: Seen[] = [];
    const payloads: Buffer[] = [];
    const r = new F.FrameReader({
      onFrame: (type, flags, id, payload) => {
        if (type === F.DATA) payloads.push(payload); // kept as delivered: must survive later reads
        got.push({ type, flags, id, payload: Buffer.from(payload) });
      },
    });
    const feed = viewedFeed(r);
    for (let i = 0; i < all.length; i += step) assert.equal(feed(all.subarray(i, Math.min(all.length, i + step))), 0);
    assert.deepEqual(got, seen, `step ${step}: frames as a reader fed all at once sees them`);
    assert.equal(payloads.length, 1);
    assert.equal(payloads[0]!.toString(), 'world', 'the DATA payload kept intact after the buffer was overwritten');
    assert.equal(r.pending, 0);
  }
});

test('frames: a long DATA frame offers the rest of itself for reads to land in; such reads are not copied', () => {
  const payload = pattern(3 * 16384 + 2000);
  const w = new F.FrameWriter();
  w.data(5, payload, 0, payload.length, true);
  w.windowUpdate(0, 77);
  const bytes = Buffer.from(w.take()!);
  const delivered: Array<{ type: number; payload: Buffer }> = [];
  const r = new F.FrameReader({ onFrame: (type, _flags, _id, p) => void delivered.push({ type, payload: p }) });
  r.maxFrameSize = 1 << 16;
  const feed = viewedFeed(r);
  assert.equal(r.readInto(), null, 'nothing to offer before a frame starts');
  // The first read: the header and 16 KiB of the payload (one TLS record), through the shared buffer.
  let off = 9 + 16384;
  assert.equal(feed(bytes.subarray(0, off)), 0);
  const regions: Buffer[] = [];
  for (;;) {
    const into = r.readInto();
    if (into === null) break;
    regions.push(into);
    const n = Math.min(into.length, 16384); // a record's worth at a time
    bytes.copy(into, 0, off, off + n); // the socket's read lands in place
    off += n;
    assert.equal(r.push(into.subarray(0, n)), 0);
  }
  assert.equal(regions.length, 2, 'two more records land in place; the last 2,000 bytes (under 4 KiB) go through the shared buffer');
  assert.ok(regions.every((g) => g.buffer === regions[0]!.buffer), 'all regions are one gathering buffer');
  assert.equal(delivered.length, 0, 'the frame is not complete yet');
  assert.equal(feed(bytes.subarray(off)), 0);
  assert.deepEqual(delivered.map((d) => d.type), [F.DATA, F.WINDOW_UPDATE]);
  assert.ok(delivered[0]!.payload.equals(payload));
  assert.equal(delivered[0]!.payload.buffer, regions[0]!.buffer, 'delivered in the memory the reads landed in');
  assert.equal(r.readInto(), null);
});

/** Bytes that differ in every position of a 251-byte cycle. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

test('frames: a long DATA payload handed over is written as it is after its header, not copied; short ones are copied', () => {
  const w = new F.FrameWriter();
  const long = Buffer.alloc(20_000, 7);
  w.settingsAck();
  w.data(1, long, 1000, 16384, false, true);
  w.data(1, Buffer.from('tail'), 0, 4, true, true);
  const parts = w.takeParts();
  assert.ok(Array.isArray(parts), 'pieces, for one corked write');
  assert.equal(parts.length, 3, 'slab (SETTINGS ack + DATA header), the payload, slab (the short frame)');
  assert.equal(parts[1]!.buffer, long.buffer, 'the payload is the caller’s bytes, not a copy');
  const seen: Array<[number, number, number]> = [];
  const r = new F.FrameReader({ onFrame: (type, flags, _id, p) => void seen.push([type, flags, p.length]) });
  assert.equal(r.push(Buffer.concat(parts)), 0);
  assert.deepEqual(seen, [[F.SETTINGS, F.FLAG_ACK, 0], [F.DATA, 0, 16384], [F.DATA, F.FLAG_END_STREAM, 4]]);
  assert.equal(w.takeParts(), null);
  assert.equal(w.pending, 0);
});

test('frames: a padded DATA frame split across reads is gathered whole (its padding is known only at its end)', () => {
  const padded = F.frame(F.DATA, F.FLAG_PADDED | F.FLAG_END_STREAM, 1, Buffer.concat([Buffer.from([3]), Buffer.from('hello'), Buffer.alloc(3)]));
  const { r, seen } = reader();
  assert.equal(r.push(padded.subarray(0, 12)), 0);
  assert.equal(seen.length, 0);
  assert.equal(r.push(padded.subarray(12)), 0);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.payload.length, 9);
});

test('frames: a frame longer than our max frame size is FRAME_SIZE_ERROR, split or not', () => {
  const big = F.frame(F.DATA, 0, 1, Buffer.alloc(16385));
  assert.equal(reader().r.push(big), 0x6);
  const { r } = reader();
  assert.equal(r.push(big.subarray(0, 4)), 0);
  assert.equal(r.push(big.subarray(4, 20)), 0x6);
  const ok = reader();
  ok.r.maxFrameSize = 1 << 20;
  assert.equal(ok.r.push(big), 0);
  assert.equal(ok.seen.length, 1);
});

test('frames: the reserved bit of the stream id is ignored', () => {
  const f = F.frame(F.DATA, 0, 1, Buffer.from('x'));
  f[5]! |= 0x80;
  const { r, seen } = reader();
  r.push(f);
  assert.equal(seen[0]!.id, 1);
});

test('frames: frameError classifies ids and sizes per type', () => {
  const cases: [number, number, number, number, number][] = [
    [F.DATA, 0, 0, 1, 0x1],
    [F.HEADERS, 0, 0, 1, 0x1],
    [F.CONTINUATION, 0, 0, 1, 0x1],
    [F.PRIORITY, 0, 0, 5, 0x1],
    [F.PRIORITY, 0, 1, 4, 0], // stream error, left to the caller
    [F.RST_STREAM, 0, 1, 3, 0x6],
    [F.RST_STREAM, 0, 0, 4, 0x1],
    [F.SETTINGS, 0, 1, 6, 0x1],
    [F.SETTINGS, 0, 0, 7, 0x6],
    [F.SETTINGS, F.FLAG_ACK, 0, 6, 0x6],
    [F.SETTINGS, 0, 0, 12, 0],
    [F.PUSH_PROMISE, 0, 1, 4, 0x1],
    [F.PING, 0, 0, 7, 0x6],
    [F.PING, 0, 3, 8, 0x1],
    [F.GOAWAY, 0, 0, 7, 0x6],
    [F.GOAWAY, 0, 1, 8, 0x1],
    [F.WINDOW_UPDATE, 0, 0, 5, 0x6],
    [F.WINDOW_UPDATE, 0, 7, 4, 0],
    [0x42, 0xff, 0, 1000, 0],
  ];
  for (const [type, flags, id, len, want] of cases) assert.equal(F.frameError(type, flags, id, len), want, `type ${type} id ${id} len ${len}`);
});

test('frames: padding and priority fields are stripped; bad padding is null', () => {
  const padded = Buffer.concat([Buffer.from([3]), Buffer.from('abc'), Buffer.alloc(3)]);
  assert.equal(F.unpad(F.DATA, F.FLAG_PADDED, padded)!.toString(), 'abc');
  assert.equal(F.unpad(F.DATA, F.FLAG_PADDED, Buffer.from([5, 1, 2])), null);
  assert.equal(F.unpad(F.DATA, F.FLAG_PADDED, Buffer.alloc(0)), null);
  const prio = Buffer.concat([Buffer.from([1]), Buffer.alloc(5), Buffer.from('hb'), Buffer.alloc(1)]);
  assert.equal(F.unpad(F.HEADERS, F.FLAG_PADDED | F.FLAG_PRIORITY, prio)!.toString(), 'hb');
  assert.equal(F.unpad(F.HEADERS, F.FLAG_PRIORITY, Buffer.alloc(4)), null);
  const plain = Buffer.from('same');
  assert.equal(F.unpad(F.DATA, 0, plain), plain);
});

test('frames: the writer keeps one contiguous output per turn and drops a big slab', () => {
  const w = new F.FrameWriter();
  for (let i = 0; i < 100; i++) w.data(1, Buffer.alloc(1000, i), 0, 1000, false);
  assert.equal(w.pending, 100 * 1009);
  const out = w.take()!;
  assert.equal(out.length, 100 * 1009);
  const { r, seen } = reader();
  r.push(out);
  assert.equal(seen.length, 100);
  assert.equal(seen[99]!.payload[0], 99);
  assert.equal(w.take(), null);
  w.release();
  w.windowUpdate(1, 5);
  assert.equal(w.take()!.length, 13);
});

test('frames: a quiet turn writes into a piece of the shared pool; a busy connection keeps a slab of its own', () => {
  const pooled = (b: Buffer): boolean => b.buffer.byteLength === Buffer.poolSize && b.byteOffset + b.length <= Buffer.poolSize;
  const w = new F.FrameWriter();
  // One small request's turn on an idle connection: no ArrayBuffer of its own (V8 frees each
  // one inside the young-generation pause).
  w.headers(1, Buffer.alloc(40, 1), false, 16384);
  w.data(1, Buffer.from('hello'), 0, 5, true);
  const quiet = w.take()!;
  assert.equal(quiet.length, 9 + 40 + 9 + 5);
  assert.ok(pooled(quiet), `a quiet turn took a buffer of ${quiet.buffer.byteLength} bytes of its own`);
  w.release();
  // A turn too big for a pool piece gets a full slab, and a slab that fills is replaced by another full one.
  w.data(3, Buffer.alloc(3000, 2), 0, 3000, false);
  w.data(3, Buffer.alloc(3000, 3), 0, 3000, false);
  const busy = w.take()!;
  assert.equal(busy.length, 2 * 3009);
  assert.ok(!pooled(busy) && busy.buffer.byteLength >= 16 * 1024);
  for (let i = 0; i < 4; i++) w.data(3, Buffer.alloc(3000, 4), 0, 3000, false);
  const next = w.take()!;
  assert.ok(next.buffer.byteLength >= 16 * 1024, 'a busy connection fell back to small pieces');
  // What was taken stays as it was: the writer never writes over bytes it handed out.
  assert.equal(busy[9], 2);
  assert.equal(busy[3009 + 9], 3);
  const { r, seen } = reader();
  r.push(Buffer.concat([quiet, busy, next]));
  assert.deepEqual(seen.map((f) => f.payload.length), [40, 5, 3000, 3000, 3000, 3000, 3000, 3000]);
});

test('recycling: long DATA payloads (whole in a read, or gathered across reads) are handed out in chunks; short ones and other frames are not', () => {
  const got: Buffer[] = [];
  const types: number[] = [];
  const r = new F.FrameReader({ onFrame: (type, _flags, _id, payload) => (types.push(type), got.push(payload)) });
  r.recycle = true;
  r.maxFrameSize = 64 * 1024; // as between proxies
  const long = Buffer.alloc(40_000, 7);
  const whole = F.frame(F.DATA, 0, 1, long);
  const split = F.frame(F.DATA, 0, 1, Buffer.alloc(50_000, 9));
  // Under half a chunk: memory of its own size (a chunk queued for it would hold over twice its bytes).
  const short = F.frame(F.DATA, 0, 1, Buffer.alloc(8192, 1));
  const ping = F.frame(F.PING, 0, 0, Buffer.alloc(8));
  assert.equal(r.push(Buffer.concat([whole, short, ping])), 0);
  assert.equal(r.push(split.subarray(0, 5000)), 0);
  assert.equal(r.push(split.subarray(5000)), 0);
  assert.deepEqual(types, [F.DATA, F.DATA, F.PING, F.DATA]);
  assert.deepEqual(got.map(isLent), [true, false, false, true]);
  assert.deepEqual(got[0], long);
  assert.deepEqual(got[3], Buffer.alloc(50_000, 9));
  const before = recycledChunks();
  spent(got[0]!);
  spent(got[3]!);
  assert.equal(recycledChunks() - before, 2, 'both chunks come back once spent');
  // Without recycling (sessions whose readers do not spend): no chunk at all.
  const plain = new F.FrameReader({ onFrame: (_t, _f, _i, payload) => got.push(payload) });
  plain.maxFrameSize = 64 * 1024;
  plain.push(Buffer.concat([whole, split]));
  assert.ok(!isLent(got[4]!) && !isLent(got[5]!));
});

test('recycling: a handed-over chunk framed in a copied short slice and a long part comes back once the turn is flushed', () => {
  const c = takeChunk();
  c.fill(3, 0, 40_000);
  handOut(c, 40_000);
  const w = new F.FrameWriter();
  // What the windows allowed first (short: copied into the slab), then the rest (handed over as it is).
  w.data(1, c.subarray(0, 40_000), 0, 3000, false, true);
  w.data(1, c.subarray(0, 40_000), 3000, 37_000, false, true);
  const before = recycledChunks();
  const parts = w.takeParts();
  assert.ok(Array.isArray(parts));
  assert.equal(recycledChunks(), before, 'the long part is still to be written');
  spentAll(parts as Buffer[]);
  assert.equal(recycledChunks() - before, 1);
});

test('frames: a header block given with its length carries only that much of the buffer, split at the frame size', () => {
  const block = Buffer.alloc(50000, 9);
  block.fill(3, 0, 20000);
  const w = new F.FrameWriter();
  w.headers(7, block, true, 16384, 20000);
  const { r, seen } = reader();
  assert.equal(r.push(Buffer.from(w.take()!)), 0);
  assert.deepEqual(
    seen.map((s) => [s.type, s.flags, s.id, s.payload.length]),
    [[F.HEADERS, F.FLAG_END_STREAM, 7, 16384], [F.CONTINUATION, F.FLAG_END_HEADERS, 7, 20000 - 16384]],
  );
  assert.ok(seen.every((s) => s.payload.every((b) => b === 3)), 'nothing past the length');
});
