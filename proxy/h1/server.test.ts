import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { after, describe, it } from 'node:test';
import type { ProxyError } from '../errors.js';
import type { HeaderList, RequestListener, ServerStream, StreamReset } from '../message/types.js';
import { Deadlines } from './deadlines.js';
import { H1Server } from './accept.js';
import { H1ServerConnection, type H1ServerOptions } from './server.js';
import { closeLoopbacks, collect, eventually, loopback } from './testkit.js';

after(closeLoopbacks);

/** A request as the handler saw it, with the listener events recorded. */
class Seen implements RequestListener {
  body: Buffer[] = [];
  ended = false;
  trailers: HeaderList | undefined;
  reset: StreamReset | undefined;
  writable = 0;
  accept = true;
  constructor(readonly stream: ServerStream) {
    stream.listen(this);
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
    return Buffer.concat(this.body).toString();
  }
}

async function serve(onRequest: (s: Seen) => void, o: H1ServerOptions = {}, initial?: Buffer) {
  const pair = await loopback();
  const seen: Seen[] = [];
  const errors: [ProxyError, number][] = [];
  const conn = new H1ServerConnection(pair.server, { onRequest: (st) => { const s = new Seen(st); seen.push(s); onRequest(s); } }, { onProtocolError: (e, st) => errors.push([e, st]), ...o }, initial);
  return { ...pair, seen, errors, conn };
}

const ok = (s: Seen, body = 'ok'): void => {
  s.stream.respond({ status: 200, reason: 'OK', version: 11, headers: ['Content-Length', String(body.length)] }, false);
  s.stream.write(Buffer.from(body));
  s.stream.end();
};

describe('H1ServerConnection', () => {
  it('answers a request, keeps the connection and serves the next one', async () => {
    const t = await serve((s) => ok(s, `hi ${s.stream.head.target}`));
    t.client.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    const r1 = await collect(t.client, (x) => x.endsWith('hi /a'));
    assert.match(r1, /^HTTP\/1\.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nhi \/a$/);
    t.client.write('GET /b HTTP/1.1\r\n\r\n');
    assert.match(await collect(t.client, (x) => x.endsWith('hi /b')), /hi \/b$/);
    t.close();
  });

  it('parses bytes read by detection before the socket', async () => {
    const t = await serve((s) => ok(s), {}, Buffer.from('GET /first HTTP/1.1\r\n'));
    t.client.write('Host: x\r\n\r\n');
    await collect(t.client, (x) => x.endsWith('ok'));
    assert.equal(t.seen[0]!.stream.head.target, '/first');
    t.close();
  });

  it('answers pipelined requests in order, one exchange at a time', async () => {
    const t = await serve(() => {});
    t.client.write('GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n\r\n');
    await eventually(() => t.seen.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.seen.length, 1, 'the second request waits for the first response');
    ok(t.seen[0]!, 'one');
    await eventually(() => t.seen.length === 2);
    await eventually(() => t.seen[1]!.ended);
    assert.equal(t.seen[1]!.text(), 'abc');
    ok(t.seen[1]!, 'two');
    await eventually(() => t.seen.length === 3);
    ok(t.seen[2]!, 'three');
    const all = await collect(t.client, (x) => x.endsWith('three'));
    assert.ok(all.indexOf('one') < all.indexOf('two') && all.indexOf('two') < all.indexOf('three'));
    t.close();
  });

  it('chunks a response without length, with trailers, and reads a chunked request', async () => {
    const t = await serve((s) => {
      if (!s.ended) return;
    });
    t.client.write('POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n');
    await eventually(() => t.seen[0]?.ended === true);
    const s = t.seen[0]!;
    assert.equal(s.text(), 'abc');
    assert.deepEqual(s.trailers, ['X-T', '1']);
    s.stream.respond({ status: 200, reason: '', version: 11, headers: ['X-A', 'b'] }, false);
    s.stream.write(Buffer.from('hello'));
    s.stream.end(['Grpc-Status', '0']);
    const r = await collect(t.client, (x) => x.endsWith('\r\n\r\n') && x.includes('Grpc'));
    assert.equal(r, 'HTTP/1.1 200 OK\r\nX-A: b\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGrpc-Status: 0\r\n\r\n');
    t.close();
  });

  it('HTTP/1.0: a response without length is delimited by closing; keep-alive when asked', async () => {
    const t = await serve((s) => {
      s.stream.respond({ status: 200, reason: 'OK', version: 11, headers: [] }, false);
      s.stream.write(Buffer.from('body'));
      s.stream.end();
    });
    t.client.write('GET / HTTP/1.0\r\n\r\n');
    assert.equal(await collect(t.client), 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody');
    t.close();
    const k = await serve((s) => ok(s));
    k.client.write('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(await collect(k.client, (x) => x.endsWith('ok')), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nok');
    k.close();
  });

  it('HEAD and 204/304 answers carry no body and no added framing', async () => {
    const t = await serve((s) => {
      s.stream.respond({ status: 200, reason: 'OK', version: 11, headers: ['Content-Length', '10'] }, true);
    });
    t.client.write('HEAD / HTTP/1.1\r\n\r\n');
    assert.equal(await collect(t.client, (x) => x.endsWith('\r\n\r\n')), 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n');
    t.close();
    const n = await serve((s) => s.stream.respond({ status: 204, reason: 'No Content', version: 11, headers: [] }, true));
    n.client.write('DELETE /x HTTP/1.1\r\n\r\n');
    assert.equal(await collect(n.client, (x) => x.endsWith('\r\n\r\n')), 'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n');
    n.close();
  });

  it('Expect: 100-continue: exposed, relayed on demand, and a response without it closes', async () => {
    const t = await serve((s) => {
      assert.equal(s.stream.expectsContinue, true);
      s.stream.sendContinue();
      assert.equal(s.stream.expectsContinue, false);
    });
    t.client.write('PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    assert.equal(await collect(t.client, (x) => x.endsWith('\r\n\r\n')), 'HTTP/1.1 100 Continue\r\n\r\n');
    t.client.write('data');
    await eventually(() => t.seen[0]?.ended === true);
    assert.equal(t.seen[0]!.text(), 'data');
    t.close();

    const r = await serve((s) => s.stream.respond({ status: 417, reason: 'Nope', version: 11, headers: ['content-length', '0'] }, true));
    r.client.write('PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    const res = await collect(r.client);
    assert.equal(res, 'HTTP/1.1 417 Nope\r\ncontent-length: 0\r\nConnection: close\r\n\r\n');
    r.close();
  });

  it('refuses bad framing with 400 + close, never reaching the handler', async () => {
    for (const [input, status] of [
      ['POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['GET / HTTP/2.0\r\n\r\n', 505],
      ['GET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n', 400],
    ] as const) {
      const t = await serve(() => assert.fail('handler reached'));
      t.client.write(input);
      assert.match(await collect(t.client), new RegExp(`^HTTP/1.1 ${status} [^\\r]+\\r\\nconnection: close\\r\\ncontent-length: 0\\r\\n\\r\\n$`));
      assert.equal(t.errors[0]![0].code, 'MESH_CLIENT_PROTOCOL');
      t.close();
    }
    const big = await serve(() => assert.fail('handler reached'), { parser: { maxHeadBytes: 1024 } });
    big.client.write(`GET / HTTP/1.1\r\nX: ${'a'.repeat(2000)}`);
    assert.match(await collect(big.client), /^HTTP\/1.1 431 /);
    assert.equal(big.errors[0]![0].code, 'MESH_HEADERS_TOO_LARGE');
    big.close();
  });

  it('a broken request body resets the exchange and answers 400 if nothing went out', async () => {
    const t = await serve(() => {});
    t.client.write('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX');
    assert.match(await collect(t.client), /^HTTP\/1.1 400 /);
    assert.equal(t.seen[0]!.reset?.error.code, 'MESH_CLIENT_PROTOCOL');
    t.close();
  });

  it('hands Upgrade and CONNECT sockets off with the bytes after the head, leaving no listeners', async () => {
    for (const head of ['GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 'CONNECT db:5432 HTTP/1.1\r\n\r\n']) {
      const pair = await loopback();
      const count = (socket: typeof pair.server): number => socket.listenerCount('data') + socket.listenerCount('end') + socket.listenerCount('close') + socket.listenerCount('drain') + socket.listenerCount('error');
      const before = count(pair.server);
      let got: { target: string; rest: string; listeners: number } | undefined;
      new H1ServerConnection(pair.server, { onRequest: () => assert.fail('not a request') }, {
        onTunnel: (h, socket, rest) => {
          got = { target: h.target, rest: rest.toString(), listeners: count(socket) - before };
        },
      });
      pair.client.write(`${head}early bytes`);
      await eventually(() => got !== undefined);
      assert.equal(got!.rest, 'early bytes');
      assert.equal(got!.listeners, 0);
      pair.close();
    }
  });

  it('head timeout answers 408 with a fake clock; idle keep-alive connections close', async () => {
    let now = 1000;
    const deadlines = new Deadlines({ manual: true, clock: () => now });
    const t = await serve((s) => ok(s), { deadlines, headTimeoutMs: 10_000, idleTimeoutMs: 60_000 });
    t.client.write('GET / HTTP/1.1\r\nHost');
    await new Promise((r) => setTimeout(r, 10));
    deadlines.sweep((now += 9_000));
    assert.equal(t.conn.closed, false);
    deadlines.sweep((now += 1_500));
    assert.match(await collect(t.client), /^HTTP\/1.1 408 Request Timeout\r\n/);
    t.close();

    const i = await serve((s) => ok(s), { deadlines, headTimeoutMs: 10_000, idleTimeoutMs: 60_000 });
    i.client.write('GET / HTTP/1.1\r\n\r\n');
    await collect(i.client, (x) => x.endsWith('ok'));
    deadlines.sweep((now += 30_000)); // past the head timeout but idle: still open
    assert.equal(i.conn.closed, false);
    const closed = collect(i.client);
    deadlines.sweep((now += 31_000));
    assert.equal(await closed, '');
    i.close();
  });

  it('backpressure: a slow reader pauses the socket; a slow client makes write() false then onWritable', async () => {
    const t = await serve((s) => {
      s.accept = false;
    });
    const body = Buffer.alloc(1 << 20, 'x');
    t.client.write(`POST / HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`);
    t.client.write(body);
    await eventually(() => t.seen[0]?.body.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(t.seen[0]!.body.length, 1, 'no more data while the listener is full');
    assert.ok(t.server.isPaused());
    t.seen[0]!.accept = true;
    t.seen[0]!.stream.resume();
    await eventually(() => t.seen[0]!.ended);
    assert.equal(Buffer.concat(t.seen[0]!.body).length, body.length);

    const s = t.seen[0]!;
    s.stream.respond({ status: 200, reason: 'OK', version: 11, headers: [] }, false);
    t.client.pause();
    let full = false;
    for (let i = 0; i < 1000 && !full; i++) full = !s.stream.write(Buffer.alloc(65536, 'y'));
    assert.ok(full, 'write() reports a full socket');
    t.client.resume();
    await eventually(() => s.writable > 0, 5000);
    t.close();
  });

  it('a client closing mid-exchange resets it with MESH_CLIENT_RESET; reset() sends a RST', async () => {
    const t = await serve(() => {});
    t.client.write('POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc');
    await eventually(() => t.seen[0]?.body.length === 1);
    t.client.end();
    await eventually(() => t.seen[0]!.reset !== undefined);
    assert.equal(t.seen[0]!.reset!.error.code, 'MESH_CLIENT_RESET');
    t.close();

    const r = await serve(() => {});
    r.client.write('GET / HTTP/1.1\r\n\r\n');
    await eventually(() => r.seen.length === 1);
    const err = new Promise<string>((resolve) => r.client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')));
    r.seen[0]!.stream.reset({ h2Code: 8, error: { code: 'MESH_UPSTREAM_RESET' } as ProxyError });
    assert.equal(await err, 'ECONNRESET');
    r.close();
  });

  it('closing after a response never cuts it: large body to a Connection: close client and to a half-closed one', async () => {
    const big = Buffer.alloc(4 << 20, 'z');
    for (const [req, half] of [['GET / HTTP/1.1\r\nConnection: close\r\n\r\n', false], ['GET / HTTP/1.1\r\n\r\n', true]] as const) {
      const t = await serve((s) => {
        s.stream.respond({ status: 200, reason: 'OK', version: 11, headers: ['Content-Length', String(big.length)] }, false);
        s.stream.write(big);
        s.stream.end();
      });
      t.client.write(req);
      if (half) t.client.end();
      const text = await collect(t.client);
      assert.equal(text.length - text.indexOf('\r\n\r\n') - 4, big.length);
      t.close();
    }
  });

  it('interop: node:http client through our server, keep-alive, chunked both ways', async () => {
    const server = new H1Server({
      onRequest(st) {
        const chunks: Buffer[] = [];
        st.listen({
          onData: (c) => (chunks.push(Buffer.from(c)), true),
          onEnd: () => {
            st.respond({ status: 201, reason: 'Made', version: 11, headers: ['X-Echo', st.head.target] }, false);
            st.write(Buffer.concat(chunks));
            st.end();
          },
          onReset() {},
          onWritable() {},
        });
      },
    });
    const { createServer } = await import('node:net');
    const lsn = createServer({ allowHalfOpen: true }, (s) => server.accept(s)).listen(0, '127.0.0.1');
    await new Promise((r) => lsn.once('listening', r));
    const port = (lsn.address() as { port: number }).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 3; i++) {
      const res = await new Promise<{ status: number; body: string; echo: string; reused: boolean }>((resolve, reject) => {
        const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: `/p${i}`, agent }, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body, echo: String(res.headers['x-echo']), reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.write('part1-');
        req.end('part2');
      });
      assert.deepEqual(res, { status: 201, body: 'part1-part2', echo: `/p${i}`, reused: i > 0 });
    }
    agent.destroy();
    server.drain();
    lsn.close();
    await eventually(() => server.connections === 0);
  });
});
