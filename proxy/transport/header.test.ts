// The connection header: byte layout, parsing of every prefix and every kind of
// damage, and reading it off a real socket with the next protocol's bytes behind it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Loopback, readAll, received } from '../detect/testkit.js';
import { encodeHeader, HEADER_MAX_BYTES, parseHeader, readHeader, type HeaderResult, type SessionProtocol, type TransportHeader } from './header.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const NAME_255 = 'a'.repeat(251) + '.b.c'; // 255 latin1 bytes
const NEXT = latin1('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'); // what follows the header on an h2 session

/** An h2 header for port 8080, no name, written out by hand: "MESH" v1 len=4 proto=2 port=0x1f90 nameLen=0. */
const H2_8080 = hex('4d455348 01 0004 02 1f90 00');

function invalid(buf: Buffer, reason: RegExp): void {
  const p = parseHeader(buf);
  assert.equal(p.kind, 'invalid', `${buf.toString('hex')} parsed as ${JSON.stringify(p)}`);
  if (p.kind === 'invalid') assert.match(p.reason, reason);
}

describe('encodeHeader / parseHeader', () => {
  it('lays the fields out as documented', () => {
    assert.deepEqual(encodeHeader({ protocol: 'h2', port: 8080 }), H2_8080);
    assert.deepEqual(
      encodeHeader({ protocol: 'opaque', port: 1, name: 'db' }),
      hex('4d455348 01 0006 00 0001 02 6462'),
    );
    assert.deepEqual(encodeHeader({ protocol: 'http1', port: 65535 }), hex('4d455348 01 0004 01 ffff 00'));
    assert.deepEqual(encodeHeader({ protocol: 'tunnel', port: 5432 }), hex('4d455348 01 0004 04 1538 00'));
    assert.deepEqual(parseHeader(H2_8080), { kind: 'header', header: { protocol: 'h2', port: 8080 }, length: 11 });
  });

  for (const protocol of ['opaque', 'http1', 'h2', 'unknown', 'tunnel'] as const satisfies readonly SessionProtocol[]) {
    for (const port of [1, 65535]) {
      for (const name of [undefined, NAME_255]) {
        it(`round-trips ${protocol}, port ${port}, ${name === undefined ? 'no name' : '255-byte name'}`, () => {
          const header: TransportHeader = name === undefined ? { protocol, port } : { protocol, port, name };
          const buf = encodeHeader(header);
          assert.equal(buf.length, 11 + (name?.length ?? 0));
          assert.deepEqual(parseHeader(buf), { kind: 'header', header, length: buf.length });
        });
      }
    }
  }

  it('treats an empty name as none', () => {
    const buf = encodeHeader({ protocol: 'opaque', port: 5432, name: '' });
    assert.deepEqual(buf, encodeHeader({ protocol: 'opaque', port: 5432 }));
    assert.deepEqual(parseHeader(buf), { kind: 'header', header: { protocol: 'opaque', port: 5432 }, length: 11 });
  });

  it('asks for more at every split point, then takes exactly the header from what follows', () => {
    for (const header of [{ protocol: 'h2', port: 8080 }, { protocol: 'http1', port: 80, name: 'web.example' }] as TransportHeader[]) {
      const encoded = encodeHeader(header);
      const stream = Buffer.concat([encoded, NEXT]);
      for (let cut = 0; cut <= stream.length; cut++) {
        const p = parseHeader(stream.subarray(0, cut));
        if (cut < encoded.length) assert.deepEqual(p, { kind: 'need-more' }, `cut at ${cut}`);
        else assert.deepEqual(p, { kind: 'header', header, length: encoded.length }, `cut at ${cut}`);
      }
    }
  });

  it('refuses bad magic as soon as the first differing byte arrives', () => {
    for (let at = 0; at < 4; at++) {
      const prefix = Buffer.from(H2_8080.subarray(0, at + 1));
      prefix[at] = prefix[at]! ^ 0x20; // "mesh", byte by byte: the case differs
      invalid(prefix, /bad magic/);
      // ...and however much follows it.
      const whole = Buffer.from(H2_8080);
      whole[at] = prefix[at]!;
      invalid(whole, /bad magic/);
    }
    invalid(latin1('GET / HTTP/1.1\r\n'), /bad magic/);
    invalid(hex('16030100'), /bad magic/);
  });

  it('refuses another version', () => {
    for (const v of [0, 2, 255]) {
      const buf = Buffer.from(H2_8080);
      buf[4] = v;
      invalid(buf, new RegExp(`version ${v} is not 1`));
      invalid(buf.subarray(0, 7), new RegExp(`version ${v}`)); // without waiting for the body
    }
  });

  it('refuses a length out of range before waiting for that many bytes', () => {
    invalid(hex('4d455348 01 0003'), /length 3 out of range/);
    invalid(hex('4d455348 01 0000'), /length 0 out of range/);
    invalid(hex('4d455348 01 0104'), /length 260 out of range/); // 4 + 256
    invalid(hex('4d455348 01 ffff'), /length 65535 out of range/);
    // The largest in range waits for its body.
    assert.deepEqual(parseHeader(hex('4d455348 01 0103')), { kind: 'need-more' });
    assert.equal(HEADER_MAX_BYTES, 11 + 255);
  });

  it('refuses an unknown protocol byte', () => {
    for (const b of [5, 0x80, 255]) {
      const buf = Buffer.from(H2_8080);
      buf[7] = b;
      invalid(buf, new RegExp(`unknown session protocol ${b}`));
    }
  });

  it('refuses port 0', () => {
    invalid(hex('4d455348 01 0004 00 0000 00'), /port 0/);
  });

  it('refuses a name length that does not match the length', () => {
    invalid(hex('4d455348 01 0006 00 0050 01 6162'), /name length/); // says 1, carries 2
    invalid(hex('4d455348 01 0006 00 0050 03 6162'), /name length/); // says 3, carries 2
    invalid(hex('4d455348 01 0004 00 0050 ff'), /name length/); // says 255, carries none
    assert.equal(parseHeader(hex('4d455348 01 0006 00 0050 02 6162')).kind, 'header');
  });

  it('refuses to encode what it could not parse back', () => {
    for (const port of [0, 65536, -1, Number.NaN]) {
      assert.throws(() => encodeHeader({ protocol: 'h2', port }), { name: 'RangeError', message: new RegExp(`port ${port} is not 1-65535`) });
    }
    assert.throws(() => encodeHeader({ protocol: 'h2', port: 80, name: 'a'.repeat(256) }), { name: 'RangeError', message: /256 bytes, at most 255/ });
  });
});

describe('readHeader', { timeout: 30_000 }, () => {
  let loop: Loopback;
  before(async () => (loop = await Loopback.open()));
  after(() => loop.close());

  const HEADER: TransportHeader = { protocol: 'h2', port: 8080 };
  const ENCODED = encodeHeader(HEADER);

  /** The state a session's server must find: paused, not flowing, no listener of readHeader's left. */
  function assertHandedOver(s: Socket, listenersBefore: number[]): void {
    assert.equal(s.isPaused(), true);
    assert.equal(s.readableFlowing, false);
    assert.deepEqual(listeners(s), listenersBefore);
  }
  const listeners = (s: Socket): number[] => ['readable', 'data', 'close', 'end'].map((e) => s.listenerCount(e));

  it('reads a header split across writes and leaves exactly the bytes after it', async () => {
    const { client, server } = await loop.pair();
    const before = listeners(server);
    let settled: HeaderResult | undefined;
    const reading = readHeader(server, 5_000).then((r) => (settled = r));
    // Three separate arrivals; the last carries the header's end and the next protocol's start.
    client.write(ENCODED.subarray(0, 3));
    await received(server, 3);
    client.write(ENCODED.subarray(3, 8));
    await received(server, 8);
    assert.equal(settled, undefined, 'no verdict from 8 of 11 bytes');
    client.write(Buffer.concat([ENCODED.subarray(8), NEXT.subarray(0, 10)]));
    assert.deepEqual(await reading, { kind: 'header', header: HEADER });
    assertHandedOver(server, before);
    // Bytes that arrive afterwards queue behind the put-back ones.
    client.end(NEXT.subarray(10));
    assert.deepEqual(await readAll(server), NEXT);
  });

  it('puts back the bytes after a header that came with the FIN', async () => {
    const { client, server } = await loop.pair();
    const before = listeners(server);
    const reading = readHeader(server, 5_000);
    client.end(Buffer.concat([ENCODED, NEXT]));
    assert.deepEqual(await reading, { kind: 'header', header: HEADER });
    assertHandedOver(server, before);
    assert.deepEqual(await readAll(server), NEXT);
  });

  it('leaves nothing to read when the header is all there is', async () => {
    const { client, server } = await loop.pair();
    const reading = readHeader(server, 5_000);
    client.write(ENCODED);
    assert.deepEqual(await reading, { kind: 'header', header: HEADER });
    client.end();
    assert.deepEqual(await readAll(server), Buffer.alloc(0));
  });

  it('times out on silence and on half a header', async () => {
    const { server } = await loop.pair();
    assert.deepEqual(await readHeader(server, 50), { kind: 'timeout' });
    assert.equal(server.destroyed, false, 'the caller decides what to do with the connection');

    const pair = await loop.pair();
    pair.client.write(ENCODED.subarray(0, 6));
    await received(pair.server, 6);
    assert.deepEqual(await readHeader(pair.server, 50), { kind: 'timeout' });
  });

  it('reports a peer that closes before a full header', async () => {
    const { client, server } = await loop.pair();
    const reading = readHeader(server, 5_000);
    client.write(ENCODED.subarray(0, 9));
    await received(server, 9);
    client.end();
    assert.deepEqual(await reading, { kind: 'closed' });

    const pair = await loop.pair();
    const silent = readHeader(pair.server, 5_000);
    pair.client.destroy();
    assert.deepEqual(await silent, { kind: 'closed' });
  });

  it('reports a FIN before a full header on a half-open connection, where no close follows', async () => {
    const halfOpen = net.createServer({ allowHalfOpen: true });
    halfOpen.listen(0, '127.0.0.1');
    await once(halfOpen, 'listening');
    try {
      const client = connect({ port: (halfOpen.address() as AddressInfo).port, host: '127.0.0.1' });
      const [server] = (await once(halfOpen, 'connection')) as [Socket];
      const reading = readHeader(server, 5_000);
      client.end(ENCODED.subarray(0, 4));
      assert.deepEqual(await reading, { kind: 'closed' });
      assert.equal(server.destroyed, false, 'still open for writing');
      server.destroy();
      client.destroy();
    } finally {
      halfOpen.close();
    }
  });

  it('refuses garbage without waiting for more', async () => {
    const { client, server } = await loop.pair();
    const reading = readHeader(server, 5_000);
    client.write(latin1('GET / HTTP/1.1\r\nHost: web\r\n\r\n'));
    const r = await reading;
    assert.equal(r.kind, 'invalid');
    if (r.kind === 'invalid') assert.match(r.reason, /bad magic/);
  });
});
