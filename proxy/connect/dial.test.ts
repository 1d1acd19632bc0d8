// Connect timeouts judged after the event loop has had its poll phase: a
// stalled loop (GC, a long synchronous task) must not fail a connection the
// kernel completed in time. Before, the 100 ms inbound timer fired first.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { dialTcp } from '../opaque.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a synchronous stall, as a long GC pause or a slow task would be
  }
}

describe('dialTcp', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  const listen = async (): Promise<number> => {
    const s = createServer((c) => c.destroy());
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    return (s.address() as { port: number }).port;
  };

  it('a connection made while the event loop was stalled past the timeout is kept', async () => {
    const port = await listen();
    const dial = dialTcp({ address: '127.0.0.1', port, family: 4 }, 50);
    busy(250);
    const socket = await dial;
    assert.equal(socket.connecting, false);
    socket.destroy();
  });
});
