// Opaque forwarding when the client is gone before forwarding begins, with an
// upstream already opened for it (the server-speaks-first window's early
// upstream): that upstream used to stay open for good, and a dial that failed
// later rejected with nobody listening, which ends a Node process.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ProxyMetrics } from './metrics.js';
import { FirstBytes } from './detect/server-first.js';
import { forwardOpaque } from './opaque.js';
import { ProxyError } from './errors.js';

const servers: net.Server[] = [];
after(() => servers.forEach((s) => s.close()));

describe('opaque forwarding, client gone first', () => {
  it('closes an upstream opened for a client that is already destroyed', async () => {
    const ended = new Promise<void>((resolve) => {
      const srv = net.createServer({ allowHalfOpen: true }, (s) => {
        s.on('error', () => {});
        s.on('end', () => {
          resolve();
          s.destroy();
        });
        s.resume();
      });
      servers.push(srv);
      srv.listen(0, '127.0.0.1');
    });
    await once(servers[0]!, 'listening');
    const port = (servers[0]!.address() as AddressInfo).port;
    const up = new Promise<Socket>((resolve) => {
      const u = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(u));
    });
    const client = new net.Socket();
    client.destroy();
    const r = await forwardOpaque(client, { address: '127.0.0.1', port, family: 4 }, { connectTimeoutMs: 1000, upstream: up });
    assert.equal(r.error, 'MESH_STREAM_RESET');
    await ended; // the upstream server saw our FIN: the socket was closed, not left open
    assert.equal((await up).destroyed, true);
  });

  it('an early upstream whose dial fails after its client left rejects with nobody listening, and nothing escapes', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (e: Error) => void;
      const dial = new Promise<Socket>((_, reject) => (fail = reject));
      dial.catch(() => {}); // as ServerFirstDetector does for the dial itself
      const fb = new FirstBytes({ kind: 'opaque', reason: 'error' }, dial, 'outbound', new ProxyMetrics(false));
      const client = new net.Socket();
      client.destroy();
      await forwardOpaque(client, { address: '127.0.0.1', port: 9, family: 4 }, { connectTimeoutMs: 1000, upstream: fb.use()! });
      fail(new ProxyError('MESH_CONNECT_TIMEOUT', 'no connection in time'));
      // Two turns: a rejection nobody handles is reported after the microtasks of the turn it happened in.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
