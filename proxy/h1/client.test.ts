import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ProxyError } from '../errors.js';
import type { HeaderList, RequestHead, ResponseHead, ResponseListener, StreamReset } from '../message/types.js';
import { Deadlines } from './deadlines.js';
import { H1Pool } from './pool.js';
import { eventually } from './testkit.js';

class Res implements ResponseListener {
  head: ResponseHead | undefined;
  endStream = false;
  body: Buffer[] = [];
  trailers: HeaderList | undefined;
  ended = false;
  reset: StreamReset | undefined;
  continues = 0;
  writable = 0;
  accept = true;
  onContinue(): void {
    this.continues++;
  }
  onResponse(h: ResponseHead, endStream: boolean): void {
    this.head = h;
    this.endStream = endStream;
  }
  onData(c: Buffer): boolean {
    this.body.push(Buffer.from(c));
    return this.accept;
  }
  onEnd(t: HeaderList | undefined): void {
    this.ended = true;
    this.trailers = t;
  }
  onReset(r: StreamReset): void {
    this.reset = r;
  }
  onWritable(): void {
    this.writable++;
  }
  text(): string {
    return Buffer.concat(this.body).toString('latin1');
  }
  settled(): boolean {
    return this.ended || this.reset !== undefined;
  }
}

const servers: Server[] = [];
const sockets: Socket[] = [];
// Server-side sockets are destroyed too: a connection a test left open would keep the process alive.
after(() => {
  sockets.forEach((s) => s.destroy());
  servers.forEach((s) => s.close());
});

/**
 * A raw TCP server: `onData(socket, text, conn)` is called with what was read
 * since the handler last returned true (a request it answered); `seen` logs all.
 */
async function raw(onData: (s: Socket, text: string, conn: number) => boolean | void): Promise<{ port: number; conns: number; seen: string[] }> {
  const st = { port: 0, conns: 0, seen: [] as string[] };
  const srv = createServer((s) => {
    sockets.push(s);
    const n = st.conns++;
    st.seen[n] = '';
    let cur = '';
    s.on('data', (d) => {
      st.seen[n] += d.toString('latin1');
      cur += d.toString('latin1');
      if (onData(s, cur, n) === true) cur = '';
    });
    s.on('error', () => {});
  });
  servers.push(srv);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  st.port = (srv.address() as { port: number }).port;
  return st;
}

const dialer = (port: number) => (): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => resolve(s));
    s.once('error', (e) => reject(new ProxyError('MESH_CONNECT_REFUSED', e.message)));
  });

const get = (target: string, method = 'GET', headers: string[] = ['Host', 'x']): RequestHead => ({ method, target, scheme: undefined, authority: undefined, version: 11, headers });

function send(pool: H1Pool, head: RequestHead, body?: string[]): Res {
  const r = new Res();
  const s = pool.request(head, body === undefined, r);
  if (body !== undefined) {
    for (const b of body) s.write(Buffer.from(b));
    s.end();
  }
  return r;
}

describe('H1Pool', () => {
  it('sends a request and reads a Content-Length response; reuses the connection', async () => {
    const srv = await raw((s, text) => {
      if (!text.endsWith('\r\n\r\n')) return false;
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: Kept\r\n\r\nhello');
      return true;
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    for (let i = 0; i < 3; i++) {
      const r = send(pool, get(`/r${i}`));
      await eventually(() => r.settled());
      assert.equal(r.head?.status, 200);
      assert.deepEqual(r.head?.headers, ['Content-Length', '5', 'X-Case', 'Kept']);
      assert.equal(r.text(), 'hello');
      await eventually(() => pool.idle === 1);
    }
    assert.equal(srv.conns, 1);
    pool.close();
    assert.equal(pool.idle, 0);
  });

  it('frames bodies itself: a GET with a body and no length goes chunked; Content-Length kept as identity', async () => {
    const srv = await raw((s, text) => {
      if (text.endsWith('0\r\n\r\n') || /Content-Length: 3\r\nConnection: keep-alive\r\n\r\nabc$/.test(text)) s.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const r = send(pool, get('/g', 'GET', ['Host', 'x', 'Transfer-Encoding', 'gzip']), ['ab', 'cd']);
    await eventually(() => r.settled());
    assert.equal(srv.seen[0], 'GET /g HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
    assert.equal(r.endStream, true);
    const r2 = send(pool, get('/p', 'POST', ['Content-Length', '3']), ['abc']);
    await eventually(() => r2.settled());
    assert.equal(srv.seen[1], 'POST /p HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc');
    pool.close();
  });

  it('chunked responses with trailers, HEAD, 304 and read-until-close', async () => {
    const srv = await raw((s, text) => {
      if (!text.endsWith('\r\n\r\n')) return false;
      if (text.startsWith('GET /chunked')) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGrpc-Status: 0\r\n\r\n');
      else if (text.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n');
      else if (text.startsWith('GET /304')) s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n');
      else s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
      return true;
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const c = send(pool, get('/chunked'));
    await eventually(() => c.settled());
    assert.equal(c.text(), 'abc');
    assert.deepEqual(c.trailers, ['Grpc-Status', '0']);
    const h = send(pool, get('/', 'HEAD'));
    await eventually(() => h.settled());
    assert.ok(h.endStream && h.ended);
    const n = send(pool, get('/304'));
    await eventually(() => n.settled());
    assert.ok(n.endStream && n.ended);
    const u = send(pool, get('/close'));
    await eventually(() => u.settled());
    assert.equal(u.reset, undefined);
    assert.equal(u.text(), 'until the end');
    pool.close();
  });

  it('a paused response body, resumed later, leaves the connection clean for the next request', async () => {
    const srv = await raw((s, text) => {
      if (!text.endsWith('\r\n\r\n')) return false;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n${'x'.repeat(200000)}`);
      return true;
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const r = new Res();
    r.accept = false;
    const s = pool.request(get('/big'), true, r);
    await eventually(() => r.body.length === 1);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(r.body.length, 1);
    r.accept = true;
    s.resume();
    await eventually(() => r.ended);
    assert.equal(r.text().length, 200000);
    await eventually(() => pool.idle === 1);
    const r2 = send(pool, get('/again'));
    await eventually(() => r2.settled());
    assert.equal(r2.text().length, 200000);
    assert.equal(srv.conns, 1);
    pool.close();
  });

  it('retries a bodyless request once when a reused connection closes before answering', async () => {
    let answered = 0;
    const srv = await raw((s, text) => {
      if (!/\r\n\r\n(.)?$/.test(text)) return false;
      // Every connection answers once, then closes as the next request arrives (a server's idle close racing our reuse).
      if ((s as Socket & { used?: boolean }).used) {
        s.destroy();
        return true;
      }
      (s as Socket & { used?: boolean }).used = true;
      answered++;
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      return true;
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const r1 = send(pool, get('/1'));
    await eventually(() => r1.ended && pool.idle === 1);
    const r2 = send(pool, get('/2'));
    await eventually(() => r2.settled());
    assert.equal(r2.reset, undefined);
    assert.equal(r2.text(), 'ok');
    assert.equal(srv.conns, 2);
    assert.equal(answered, 2);
    // With a body, it is not retried.
    const r3 = send(pool, get('/3', 'POST', ['Content-Length', '1']), ['x']);
    await eventually(() => r3.settled());
    assert.equal(r3.reset?.error.code, 'MESH_UPSTREAM_RESET');
    // And the pool goes on with a fresh connection.
    const r4 = send(pool, get('/4', 'POST', ['Content-Length', '1']), ['y']);
    await eventually(() => r4.settled());
    assert.equal(r4.text(), 'ok');
    pool.close();
  });

  it('relays 100 Continue and reports protocol errors and dial failures', async () => {
    const srv = await raw((s, text) => {
      if (text.endsWith('\r\n\r\n') && text.includes('Expect')) s.write('HTTP/1.1 100 Continue\r\n\r\n');
      if (text.endsWith('data')) {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
        return true;
      }
      if (text.startsWith('GET /bad') && text.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx');
      return false;
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const r = new Res();
    const s = pool.request(get('/up', 'PUT', ['Expect', '100-continue', 'Content-Length', '4']), false, r);
    await eventually(() => r.continues === 1);
    s.write(Buffer.from('data'));
    s.end();
    await eventually(() => r.ended);
    const bad = send(pool, get('/bad'));
    await eventually(() => bad.settled());
    assert.equal(bad.reset?.error.code, 'MESH_UPSTREAM_PROTOCOL');
    pool.close();

    const dead = new H1Pool({ dial: dialer(1) });
    const d = send(dead, get('/'));
    await eventually(() => d.settled());
    assert.equal(d.reset?.error.code, 'MESH_CONNECT_REFUSED');
  });

  it('backpressure upstream: write() false against a slow server, then onWritable', async () => {
    let sock: Socket | undefined;
    const srv = await raw((s) => {
      sock = s;
      s.pause();
    });
    const pool = new H1Pool({ dial: dialer(srv.port) });
    const r = new Res();
    const s = pool.request(get('/up', 'POST'), false, r);
    await eventually(() => sock !== undefined || r.writable > 0);
    let full = false;
    for (let i = 0; i < 2000 && !full; i++) full = !s.write(Buffer.alloc(65536));
    assert.ok(full);
    const before = r.writable;
    sock!.resume();
    await eventually(() => r.writable > before, 5000);
    s.reset({ h2Code: 8, error: new ProxyError('MESH_CLIENT_RESET', 'test') });
    pool.close();
  });

  it('idle connections close after the idle timeout (fake clock) and on server close', async () => {
    let now = 0;
    const deadlines = new Deadlines({ manual: true, clock: () => now });
    const srv = await raw((s, text) => {
      if (text.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    const pool = new H1Pool({ dial: dialer(srv.port), deadlines });
    const r = send(pool, get('/'));
    await eventually(() => r.ended && pool.idle === 1);
    deadlines.sweep((now += 3000));
    assert.equal(pool.idle, 1);
    deadlines.sweep((now += 1500));
    assert.equal(pool.idle, 0);
    pool.close();
  });

  it('interop: our pool against a node:http server (keep-alive, chunked both ways, trailers)', async () => {
    const srv = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'x-method': req.method!, 'x-te': String(req.headers['transfer-encoding']) });
        res.addTrailers({ 'x-len': String(Buffer.concat(chunks).length) });
        res.end(Buffer.concat(chunks));
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    let conns = 0;
    srv.on('connection', (c) => {
      conns++;
      sockets.push(c);
    });
    const pool = new H1Pool({ dial: dialer(port) });
    for (let i = 0; i < 3; i++) {
      const r = send(pool, get(`/e${i}`, 'POST'), ['hello ', 'world']);
      await eventually(() => r.settled());
      assert.equal(r.head?.status, 200);
      assert.equal(r.text(), 'hello world');
      assert.deepEqual(r.trailers, ['x-len', '11']);
      await eventually(() => pool.idle === 1);
    }
    assert.equal(conns, 1);
    pool.close();
    srv.close();
  });

  // The forwarder resets an upstream request from inside the response parser's
  // callbacks (a retried status; a bodyless answer to an upload still being sent).
  // The parser was reading the same buffer on, into a request that was gone:
  // a TypeError out of the socket's 'data' handler, and the process died.
  for (const [name, answer, during] of [
    ['a retried 503 whose body came in the same read', 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nerror', 'response'],
    ['a bodyless 204 while the request body is still being sent', 'HTTP/1.1 204 No Content\r\n\r\n', 'response'],
    ['a chunked answer reset at its first body chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n', 'body'],
  ] as const) {
    it(`a request reset from inside the response parser (${name}) costs its connection only`, async () => {
      const srv = await raw((s, text) => {
        if (!text.includes('\r\n\r\n')) return false;
        s.write(answer);
        return true;
      });
      const pool = new H1Pool({ dial: dialer(srv.port) });
      const r = new Res();
      let resets = 0;
      const cut = (): void => {
        resets++;
        up.reset({ h2Code: 0x8, error: new ProxyError('MESH_CLIENT_RESET', 'retrying') });
      };
      r.onResponse = (h, endStream) => {
        r.head = h;
        r.endStream = endStream;
        if (during === 'response') cut();
      };
      r.onData = (c) => {
        r.body.push(Buffer.from(c));
        if (during === 'body') cut();
        return true;
      };
      // An upload announced longer than what is sent: the request is still open when the answer comes.
      const up = pool.request(get('/u', 'POST', ['Host', 'x', 'Content-Length', '100']), false, r);
      up.write(Buffer.from('abc'));
      await eventually(() => r.head !== undefined && pool.idle === 0 && srv.seen[0] !== undefined);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(resets, 1, 'reset once, and no callback after it');
      assert.equal(r.ended, false, 'no end after the reset');
      // The pool goes on: a fresh request is answered on a new connection.
      const next = send(pool, get('/next', 'POST', ['Host', 'x', 'Content-Length', '0']), []);
      await eventually(() => next.settled());
      assert.equal(next.head?.status, answer.startsWith('HTTP/1.1 503') ? 503 : answer.startsWith('HTTP/1.1 204') ? 204 : 200);
      assert.ok(srv.conns >= 2, 'the reset connection was not reused');
      pool.close();
    });
  }
});
