// Interop: hpack.js both ways, and nghttp2 (node:http2) both ways over real loopback sockets:
// a node:http2 client's HEADERS captured by a raw TCP server and decoded with ours, and our
// blocks sent by a raw TCP client to a node:http2 server.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, test } from 'node:test';
import { HpackDecoder } from './decoder.js';
import { HpackEncoder } from './encoder.js';
import { RefDecoder, RefEncoder } from './fuzz.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_CONTINUATION = 0x9;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** Header blocks (HEADERS + CONTINUATION payloads joined) from a client's byte stream. */
function headerBlocks(bytes: Buffer): Buffer[] {
  assert.ok(bytes.subarray(0, PREFACE.length).equals(PREFACE));
  const blocks: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let pos = PREFACE.length; pos + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(pos, 3);
    const type = bytes[pos + 3]!;
    const flags = bytes[pos + 4]!;
    let payload = bytes.subarray(pos + 9, pos + 9 + length);
    pos += 9 + length;
    if (type === FRAME_HEADERS) {
      if ((flags & 0x8) !== 0) payload = payload.subarray(1, payload.length - payload[0]!); // PADDED
      if ((flags & 0x20) !== 0) payload = payload.subarray(5); // PRIORITY
      pending = [payload];
    } else if (type === FRAME_CONTINUATION) {
      pending.push(payload);
    } else {
      continue;
    }
    if ((flags & 0x4) !== 0) blocks.push(Buffer.concat(pending)); // END_HEADERS
  }
  return blocks;
}

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

// Requests that repeat names and values (so nghttp2 indexes them), with long values (so it
// Huffman-codes them), credentials (so it marks some never-indexed) and a latin1 octet.
const bearer = 'Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ3ZWIifQ.c2lnbmF0dXJl';
const requests: Array<Record<string, string>> = [
  { ':method': 'GET', ':path': '/api/v1/users?page=1', 'user-agent': 'curl/8.5.0', accept: '*/*', authorization: bearer },
  { ':method': 'POST', ':path': '/api/v1/users', 'user-agent': 'curl/8.5.0', 'content-type': 'application/json', cookie: 'sid=0123456789abcdef0123', 'x-obs': 'caf\xe9' },
  { ':method': 'GET', ':path': '/api/v1/users?page=2', 'user-agent': 'curl/8.5.0', accept: '*/*', authorization: bearer, cookie: 'a=b' },
  { ':method': 'DELETE', ':path': '/api/v1/users/42', 'user-agent': 'curl/8.5.0', 'x-request-id': 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'x-obs': 'caf\xe9' },
];

test('blocks from a node:http2 (nghttp2) client decode to what it sent', async () => {
  const captured: Buffer[] = [];
  let done!: () => void;
  const allIn = new Promise<void>((resolve) => (done = resolve));
  const server = net.createServer((socket) => {
    // Our SETTINGS, and an ACK of the client's, so the client goes ahead.
    socket.write(Buffer.concat([frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)), frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0))]));
    socket.on('data', (chunk: Buffer) => {
      captured.push(chunk);
      if (headerBlocks(Buffer.concat(captured)).length >= requests.length) done();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  cleanups.push(() => client.destroy());
  for (const headers of requests) client.request(headers, { endStream: true }).on('error', () => {});
  await allIn;

  const blocks = headerBlocks(Buffer.concat(captured));
  const decoder = new HpackDecoder();
  for (let i = 0; i < requests.length; i++) {
    const out: string[] = [];
    decoder.decode(blocks[i]!, out);
    const got = new Map<string, string>();
    for (let j = 0; j < out.length; j += 2) got.set(out[j]!, out[j + 1]!);
    for (const [name, value] of Object.entries(requests[i]!)) assert.equal(got.get(name), value, `request ${i}: ${name}`);
    assert.equal(got.get(':authority'), `127.0.0.1:${port}`);
    assert.equal(got.get(':scheme'), 'http');
  }
  // The features under test were really exercised: nghttp2 Huffman-coded the first authority
  // and user-agent, and the later blocks indexed them from the dynamic table.
  assert.ok(!blocks[0]!.includes('127.0.0.1') && !blocks[0]!.includes('curl/8.5.0'), 'Huffman used');
  assert.ok(decoder.dynamicTableLength >= 3, 'dynamic table used');
  assert.ok(blocks[2]!.length < blocks[0]!.length, 'a similar request later is smaller');
});

for (const huffman of [false, true]) {
  test(`our blocks decode identically in a node:http2 (nghttp2) server (huffman ${huffman})`, async () => {
    const seen: string[][] = [];
    let done!: () => void;
    const allIn = new Promise<void>((resolve) => (done = resolve));
    const server = http2.createServer();
    server.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
      seen.push(raw);
      stream.respond({ ':status': 204 }, { endStream: true });
      if (seen.length === requests.length) done();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;

    const encoder = new HpackEncoder({ huffman });
    const sent: string[][] = [];
    const frames: Buffer[] = [PREFACE, frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0))];
    for (let i = 0; i < requests.length; i++) {
      const flat: string[] = [':scheme', 'http', ':authority', `127.0.0.1:${port}`];
      for (const [name, value] of Object.entries(requests[i]!)) flat.push(name, value);
      sent.push(flat);
      frames.push(frame(FRAME_HEADERS, 0x5, 1 + 2 * i, encoder.encode(flat)));
    }
    const socket = net.connect(port, '127.0.0.1');
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.write(Buffer.concat(frames));
    await allIn;
    for (let i = 0; i < requests.length; i++) assert.deepEqual(seen[i], sent[i]);
  });
}

test('hpack.js blocks (Huffman, never-indexed, not indexed, indexed) decode identically with ours', () => {
  const ref = new RefEncoder();
  const ours = new HpackDecoder();
  for (let round = 0; round < 3; round++) {
    for (let flags = 0; flags < 8; flags++) {
      const headers: string[] = [':status', '200', 'x-obs', `v\xe9\xff${flags}`, 'content-type', 'text/plain', 'x-round', String(round)];
      const block = ref.encode(headers, [flags, flags, flags, flags]);
      const out: string[] = [];
      ours.decode(block, out);
      assert.deepEqual(out, headers);
    }
  }
});

test('our blocks decode identically with hpack.js', () => {
  for (const huffman of [false, true]) {
    const enc = new HpackEncoder({ huffman, maxTableSize: 256 });
    const ref = new RefDecoder(256);
    for (let round = 0; round < 20; round++) {
      const headers = [':method', 'GET', ':path', `/r/${round % 4}`, 'cookie', `session=${'s'.repeat(round)}`, 'x-obs', `\x80\xfe${round % 3}`];
      if (round === 10) enc.setMaxTableSize(100);
      assert.deepEqual(ref.decode(enc.encode(headers)), headers);
    }
  }
});
