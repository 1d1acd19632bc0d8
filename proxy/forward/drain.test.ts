// Shutdown drains the HTTP stage: each connection is told to close once what it
// carries is done. HTTP/1 answers its request in flight with Connection: close
// (an idle keep-alive connection closes at once); h2 sends GOAWAY and lets its
// open streams finish. Before, nothing was told: clients kept sending on their
// keep-alive connections and got 502s from pools already closed, then resets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { H1Pool } from '../h1/index.js';
import { resetAndDestroy } from '../transport/tls.js';
import { addr, eventually, startProxy, type PoolFactory, type ProxyNode } from './testkit.js';

const pool: PoolFactory = (dial) => new H1Pool({ dial, reset: resetAndDestroy });
const closers: (() => unknown)[] = [];
after(async () => {
  for (const c of closers) await c();
});

/** An HTTP/1 backend that holds each answer until the test releases it. */
async function heldBackend(): Promise<{ port: number; waiting: number; release(): void }> {
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      while (text.includes('\r\n\r\n')) {
        text = text.slice(text.indexOf('\r\n\r\n') + 4);
        held.push(s);
      }
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  closers.push(() => new Promise((r) => srv.close(r)));
  return {
    port: (srv.address() as net.AddressInfo).port,
    get waiting() {
      return held.length;
    },
    release() {
      for (const s of held.splice(0)) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    },
  };
}

/** A keep-alive HTTP/1 client on one connection: `ask` writes a request and resolves with its whole response. */
function keepAlive(port: number): { ask(path: string): Promise<string>; closed: Promise<void> } {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  closers.push(() => c.destroy());
  let text = '';
  let waiter: ((t: string) => void) | undefined;
  c.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    if (waiter && /\r\n\r\nok$/.test(text)) {
      const w = waiter;
      waiter = undefined;
      const t = text;
      text = '';
      w(t);
    }
  });
  return {
    ask: (path) => new Promise((resolve) => ((waiter = resolve), c.write(`GET ${path} HTTP/1.1\r\nHost: drain.test\r\n\r\n`))),
    closed: new Promise((resolve) => c.once('close', () => resolve())),
  };
}

async function proxy(protocol: 'h1' | 'h2', backendPort: number): Promise<ProxyNode> {
  const p = await startProxy({ direction: 'inbound', protocol, target: addr(backendPort), h1Pool: pool });
  closers.push(() => p.close());
  return p;
}

describe('HTTP stage drain', () => {
  it('HTTP/1: an idle keep-alive connection is closed at once; one with a request in flight gets its answer with Connection: close, then closes', async () => {
    const backend = await heldBackend();
    const p = await proxy('h1', backend.port);
    const idle = keepAlive(p.port);
    const busy = keepAlive(p.port);
    const first = idle.ask('/one');
    await eventually(() => backend.waiting === 1);
    backend.release();
    assert.match(await first, /^HTTP\/1\.1 200 OK\r\n/);
    const inFlight = busy.ask('/two');
    await eventually(() => backend.waiting === 1);
    p.stage.drain();
    await idle.closed;
    backend.release();
    const answer = await inFlight;
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /\r\nConnection: close\r\n/i);
    await busy.closed;
  });

  it('h2: GOAWAY to the client; its stream in flight still completes', async () => {
    const backend = await heldBackend();
    const p = await startProxy({ direction: 'inbound', protocol: 'h2', target: addr(backend.port), h1Pool: pool, clientId: 'web.default.serviceaccount.identity.cluster.local' });
    closers.push(() => p.close());
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => {});
    closers.push(() => session.destroy());
    const goaway = once(session, 'goaway');
    // As a client proxy sends an HTTP/1 request: restored as HTTP/1 for the app.
    const req = session.request({ ':path': '/three', ':authority': 'drain.test', 'mesh-orig-proto': 'HTTP/1.1' });
    req.end();
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (body += d));
    const ended = once(req, 'end');
    await eventually(() => backend.waiting === 1);
    p.stage.drain();
    await goaway;
    backend.release();
    await ended;
    assert.equal(status, 200);
    assert.equal(body, 'ok');
  });
});
