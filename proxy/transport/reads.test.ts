// Socket reads through Node's user-buffer path, on real loopback sockets (plain
// and TLS): bytes arrive whole and in order, each chunk is the codec's own
// (not a view of the buffer the next read overwrites), what the Readable held
// comes first, pause() stops the reading, the end still comes, and a socket
// handed on emits 'data' again.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { makeCa, makeLeaf } from '../../ca/fixtures.js';
import { readsAsEvents, readsTaken, takeReads, takeReadViews } from './reads.js';

const sockets = new Set<Socket>();
const servers = new Set<Server>();
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/** A connected pair over loopback: [accepted, dialled]. */
async function plainPair(): Promise<[Socket, Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const dialled = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  sockets.add(dialled);
  const [a] = (await accepted) as [Socket];
  sockets.add(a);
  await once(dialled, 'connect');
  return [a, dialled];
}

async function tlsPair(): Promise<[TLSSocket, TLSSocket]> {
  const now = new Date();
  const ca = await makeCa(now);
  const leaf = await makeLeaf(ca, 'reads.test.serviceaccount.identity.cluster.local', now);
  const server = tls.createServer({ cert: leaf.chainPem, key: leaf.keyPem, allowHalfOpen: true });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection');
  const dialled = tls.connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    ca: ca.anchor.certPem,
    checkServerIdentity: () => undefined,
  });
  sockets.add(dialled);
  const secured = once(dialled, 'secureConnect'); // may come before the server's event
  const [a] = (await accepted) as [TLSSocket];
  sockets.add(a);
  await secured;
  return [a, dialled];
}

/** `n` bytes, different in every position of a 251-byte cycle (a prime: no read size lines up with it). */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i + seed) % 251;
  return b;
}

/** Collects what the sink gets until `total` bytes came; resolves with the chunks as they were handed over. */
function collect(socket: Socket, total: number): { chunks: Buffer[]; done: Promise<void>; taken: boolean } {
  const chunks: Buffer[] = [];
  let got = 0;
  let finish!: () => void;
  const done = new Promise<void>((res) => (finish = res));
  const taken = takeReads(socket, (c) => {
    chunks.push(c);
    got += c.length;
    if (got >= total) finish();
  });
  if (total === 0) finish();
  return { chunks, done, taken };
}

for (const [kind, pair] of [
  ['plain', plainPair],
  ['TLS', tlsPair],
] as const) {
  describe(`reads (${kind})`, () => {
    it('delivers every byte in order, each chunk a copy the next reads do not overwrite', async () => {
      const [a, b] = await pair();
      // Several writes of awkward sizes, some over 64 KiB: many reads, so the shared buffer is reused.
      const parts = [pattern(1, 1), pattern(700, 2), pattern(70_000, 3), pattern(5, 4), pattern(200_000, 5), pattern(3_333, 6)];
      const all = Buffer.concat(parts);
      const c = collect(a, all.length);
      assert.equal(c.taken, true);
      assert.equal(readsTaken(a), true);
      for (const p of parts) b.write(p);
      await c.done;
      assert.ok(c.chunks.length > 1, 'expected several reads');
      // Compared only now, after every read: a chunk that were a view of the shared buffer would hold the last read's bytes.
      assert.ok(Buffer.concat(c.chunks).equals(all));
    });

    it("hands over first what the socket's Readable held, then the new reads", async () => {
      const [a, b] = await pair();
      a.pause();
      a.unshift(Buffer.from('held;')); // as detection puts its bytes back
      const c = collect(a, 'held;'.length + 'after'.length);
      assert.deepEqual(c.chunks.map(String), ['held;'], 'held bytes are delivered at once');
      b.write('after');
      a.resume();
      await c.done;
      assert.equal(Buffer.concat(c.chunks).toString(), 'held;after');
    });

    it('pause() stops reading from the socket, a paused socket stays paused when taken, resume() reads again', async () => {
      const [a, b] = await pair();
      const handle = (a as unknown as { _handle: { reading: boolean } })._handle;
      const c = collect(a, 6);
      assert.equal(handle.reading, true, 'a socket nobody paused reads at once');
      a.pause();
      assert.equal(handle.reading, false);
      const again = collect(a, 6); // taken while paused: stays paused
      assert.equal(handle.reading, false);
      b.write('abc');
      b.write('def');
      a.resume();
      assert.equal(handle.reading, true);
      await again.done;
      assert.equal(Buffer.concat(again.chunks).toString(), 'abcdef');
      assert.equal(c.chunks.length, 0);
    });

    it("emits 'end' after the last bytes when the peer half-closes", async () => {
      const [a, b] = await pair();
      const order: string[] = [];
      takeReads(a, (chunk) => order.push(chunk.toString()));
      const ended = once(a, 'end').then(() => order.push('end'));
      b.end('last words');
      await ended;
      assert.equal(order.at(-1), 'end');
      assert.equal(order.slice(0, -1).join(''), 'last words');
      // Half-closed, not closed: the other way still carries bytes.
      const back = collect(b, 2);
      a.end('ok');
      await back.done;
      assert.equal(Buffer.concat(back.chunks).toString(), 'ok');
    });

    it("readsAsEvents: a socket handed on emits 'data' again, and pipe() works on it", async () => {
      const [a, b] = await pair();
      const first = collect(a, 5);
      b.write('first');
      await first.done;
      a.pause();
      readsAsEvents(a);
      const sink = new PassThrough();
      const piped: Buffer[] = [];
      sink.on('data', (c: Buffer) => piped.push(c));
      a.pipe(sink);
      const big = pattern(150_000, 9);
      b.end(big);
      await once(sink, 'end');
      assert.ok(Buffer.concat(piped).equals(big));
      assert.equal(Buffer.concat(first.chunks).toString(), 'first', 'the codec saw nothing after it let go');
    });

    it('takeReadViews: each read is a view valid during the call; a placed read lands in the region given, nothing copied', async () => {
      const [a, b] = await pair();
      const all = pattern(300_000, 11);
      // The sink copies each view at once (as a codec copies what it keeps); and once, after the
      // first read, it names a region of its own for the next read.
      const region = Buffer.alloc(50_000);
      let placed = false;
      let regionChunk: Buffer | undefined;
      const copies: Buffer[] = [];
      const views: Buffer[] = [];
      let got = 0;
      let finish!: () => void;
      const done = new Promise<void>((res) => (finish = res));
      assert.equal(
        takeReadViews(
          a,
          (v) => {
            if (v.buffer === region.buffer) regionChunk = v;
            views.push(v);
            copies.push(Buffer.from(v));
            got += v.length;
            if (got >= all.length) finish();
          },
          () => {
            if (placed) return null;
            placed = true;
            return region.subarray(100);
          },
        ),
        true,
      );
      b.write(all);
      await done;
      assert.ok(Buffer.concat(copies).equals(all), 'copies made during each call are the bytes, in order');
      assert.ok(regionChunk !== undefined, 'the read after the first landed in the region');
      assert.equal(regionChunk.byteOffset, region.byteOffset + 100);
      const at = views.indexOf(regionChunk);
      const before = copies.slice(0, at).reduce((n, c) => n + c.length, 0);
      assert.ok(region.subarray(100, 100 + regionChunk.length).equals(all.subarray(before, before + regionChunk.length)), 'the region holds its read');
      // The shared buffer was reused: views kept past their call no longer hold their bytes.
      const shared = views.filter((v) => v.buffer !== region.buffer);
      assert.ok(shared.length > 2);
      assert.ok(!Buffer.concat(shared).equals(Buffer.concat(copies.filter((_c, i) => views[i]!.buffer !== region.buffer))), 'views of the shared buffer are overwritten by later reads');
    });

    it('takeReads after takeReadViews with a placer: the next reads land in the shared buffer again and are copied right', async () => {
      const [a, b] = await pair();
      const region = Buffer.alloc(1000);
      const first: Buffer[] = [];
      let seen = 0;
      let gotFirst!: () => void;
      const firstDone = new Promise<void>((res) => (gotFirst = res));
      takeReadViews(
        a,
        (v) => {
          first.push(Buffer.from(v));
          seen += v.length;
          if (seen >= 5) gotFirst();
        },
        () => region, // every next read is placed: the socket's buffer is the region when re-targeted
      );
      b.write('first');
      await firstDone;
      const c = collect(a, 150_000);
      region.fill(0x55);
      const rest = pattern(150_000, 13);
      b.write(rest);
      await c.done;
      assert.equal(Buffer.concat(first).toString(), 'first');
      assert.ok(Buffer.concat(c.chunks).equals(rest), 'copies of what each read brought');
      assert.ok(region.every((x) => x === 0x55), 'nothing landed in the region after the re-target');
    });

    it('takeReads again re-targets the reads', async () => {
      const [a, b] = await pair();
      const one = collect(a, 3);
      b.write('one');
      await one.done;
      const two = collect(a, 3);
      assert.equal(two.taken, true);
      b.write('two');
      await two.done;
      assert.equal(Buffer.concat(one.chunks).toString(), 'one');
      assert.equal(Buffer.concat(two.chunks).toString(), 'two');
    });
  });
}

describe('reads: where the path is not there', () => {
  it("a stream that is not a socket is left to 'data'", () => {
    const s = new PassThrough() as unknown as Socket;
    assert.equal(takeReads(s, () => {}), false);
    assert.equal(readsTaken(s), false);
  });

  it("a destroyed socket is left to 'data'", async () => {
    const [a] = await plainPair();
    a.destroy();
    assert.equal(takeReads(a, () => {}), false);
  });

  it('a socket still connecting gets the path when Node makes its handle', async () => {
    const server = net.createServer((s) => s.end('hello'));
    servers.add(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const s = new net.Socket();
    sockets.add(s);
    const got: Buffer[] = [];
    // Before connect(): no handle at all, and not connecting: refused.
    assert.equal(takeReads(s, (c) => got.push(c)), false);
    s.connect((server.address() as AddressInfo).port, 'localhost'); // a name: the handle waits for the lookup
    assert.equal(takeReads(s, (c) => got.push(c)), true);
    await once(s, 'end');
    assert.equal(Buffer.concat(got).toString(), 'hello');
  });
});
