import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { H1Output } from './batch.js';

/** The part of a socket H1Output uses, recording what was written. */
function fakeSocket(): { socket: Socket; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const s = {
    destroyed: false,
    writableNeedDrain: false,
    writableCorked: 0,
    write(b: Buffer): boolean {
      writes.push(b);
      return true;
    },
    cork(): void {
      s.writableCorked++;
    },
    uncork(): void {
      s.writableCorked--;
    },
  };
  return { socket: s as unknown as Socket, writes };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('h1 batch: each connection writes once per turn, in order, from a piece of the shared pool', async () => {
  const a = fakeSocket();
  const b = fakeSocket();
  const oa = new H1Output(a.socket);
  const ob = new H1Output(b.socket);
  oa.text('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  ob.text('HTTP/1.1 204 No Content\r\n\r\n');
  oa.bytes(Buffer.from('hello'));
  assert.equal(a.writes.length + b.writes.length, 0, 'written before the end of the turn');
  await turn();
  assert.deepEqual(a.writes.map(String), ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello']);
  assert.deepEqual(b.writes.map(String), ['HTTP/1.1 204 No Content\r\n\r\n']);
  // A small turn takes no ArrayBuffer of its own.
  assert.equal(a.writes[0]!.buffer.byteLength, Buffer.poolSize);
  // The next turn queues again.
  oa.text('x');
  await turn();
  assert.deepEqual(a.writes.map(String).slice(1), ['x']);
});

test('h1 batch: a turn with more connections than the kept list still writes every one, and later turns go on', async () => {
  const socks = Array.from({ length: 3000 }, () => fakeSocket());
  const outs = socks.map((s) => new H1Output(s.socket));
  for (let round = 0; round < 3; round++) {
    // 3,000 connections in one turn (past the kept list), then 3 in the next.
    const n = round === 1 ? 3 : outs.length;
    for (let i = 0; i < n; i++) outs[i]!.text(`r${round} c${i}\r\n`);
    await turn();
    for (let i = 0; i < n; i++) assert.equal(String(socks[i]!.writes[socks[i]!.writes.length - 1]), `r${round} c${i}\r\n`, `round ${round} connection ${i}`);
  }
  assert.equal(socks[2999]!.writes.length, 2);
  assert.equal(socks[0]!.writes.length, 3);
});

test('h1 batch: a quiet turn takes from the pool what it needs, not a fixed block', async () => {
  const c = fakeSocket();
  const o = new H1Output(c.socket);
  for (let i = 0; i < 20; i++) {
    o.text('y'.repeat(100));
    await turn();
  }
  // 20 turns of ~100 bytes fit in one or two 8 KiB pools; fixed 2 KiB blocks needed five or more.
  const pools = new Set(c.writes.map((w) => w.buffer));
  assert.equal(c.writes.length, 20);
  assert.ok(pools.size <= 2, `20 quiet turns used ${pools.size} pools`);
});
