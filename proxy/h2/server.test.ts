// node:http2 (nghttp2) as the client, our server role answering.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import type { RequestListener, ServerStream, StreamReset } from '../message/types.js';
import { Echo, eventually, ourServer, sha, type OurServer } from './testkit.js';

const servers: OurServer[] = [];
const sessions: http2.ClientHttp2Session[] = [];
after(async () => {
  for (const s of sessions) s.destroy();
  for (const s of servers) await s.close();
});

async function setup(handler = new Echo(), opts = {}): Promise<{ srv: OurServer; c: http2.ClientHttp2Session; echo: Echo }> {
  const srv = await ourServer(handler, opts);
  servers.push(srv);
  const c = http2.connect(`http://127.0.0.1:${srv.port}`);
  c.on('error', () => {});
  sessions.push(c);
  return { srv, c, echo: handler };
}

interface Got {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

function send(c: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer, opts: http2.ClientSessionRequestOptions = {}): Promise<Got> {
  const req = c.request(headers, { endStream: body === undefined, ...opts });
  const chunks: Buffer[] = [];
  let status = 0;
  let hs: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders | undefined;
  req.on('response', (h) => ((hs = h), (status = Number(h[':status']))));
  req.on('trailers', (t) => (trailers = t));
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('error', () => {});
  if (body !== undefined) req.end(body);
  return new Promise((resolve) => req.on('close', () => resolve({ status, headers: hs, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode })));
}

test('server: GET and a 5 MB POST echoed, checksummed; names lower-cased', async () => {
  const { c } = await setup();
  const g = await send(c, { ':path': '/hello' });
  assert.equal(g.status, 200);
  assert.equal(g.headers['x-upper'], 'kept');
  assert.equal(g.body.length, 0);
  const body = randomBytes(5 << 20);
  const p = await send(c, { ':method': 'POST', ':path': '/up', 'content-length': String(body.length) }, body);
  assert.equal(p.status, 200);
  assert.equal(sha(p.body), sha(body));
  assert.equal(p.rstCode, 0);
});

test('server: many concurrent POSTs on one connection', async () => {
  const { c } = await setup();
  const bodies = Array.from({ length: 50 }, (_, i) => randomBytes(1000 * i + 1));
  const got = await Promise.all(bodies.map((b) => send(c, { ':method': 'POST', ':path': '/m' }, b)));
  got.forEach((g, i) => assert.equal(sha(g.body), sha(bodies[i]!)));
});

test('server: request trailers reach the handler; response trailers and trailers-only answers', async () => {
  const { c, echo } = await setup();
  const req = c.request({ ':method': 'POST', ':path': '/t', 'x-trailers': 'yes' }, { waitForTrailers: true });
  req.on('wantTrailers', () => req.sendTrailers({ 'x-req-trailer': 'abc' }));
  let trailers: http2.IncomingHttpHeaders | undefined;
  req.on('trailers', (t) => (trailers = t));
  req.resume();
  req.end(Buffer.from('payload'));
  await new Promise((r) => req.on('close', r));
  assert.equal(trailers?.['x-sum'], 'ok');
  assert.equal(trailers?.['x-req-trailer'], 'abc');
  const only = await send(c, { ':path': '/grpc', 'x-status': '200' });
  assert.equal(only.status, 200);
  assert.equal(only.headers['grpc-status'], '13');
  assert.equal(echo.seen.at(-1)!.bodyless, true);
});

test('server: 100-continue answered by sendContinue before the body is sent', async () => {
  const { c, echo } = await setup();
  const req = c.request({ ':method': 'POST', ':path': '/c', expect: '100-continue' });
  const continued = new Promise((r) => req.on('continue', r));
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  await continued;
  assert.equal(echo.seen.at(-1)!.head.method, 'POST');
  req.end('after continue');
  await new Promise((r) => req.on('close', r));
  assert.equal(Buffer.concat(chunks).toString(), 'after continue');
});

test('server: RST_STREAM both ways keeps its code', async () => {
  let held: ServerStream | undefined;
  const resets: StreamReset[] = [];
  const handler = {
    onRequest(s: ServerStream): void {
      held = s;
      s.listen({ onData: () => true, onEnd: () => {}, onReset: (r) => resets.push(r), onWritable: () => {} } satisfies RequestListener);
      if (s.head.target === '/reset-me') s.reset({ h2Code: 0xd, error: undefined as never });
    },
  };
  const { c } = await setup(handler as never);
  const r1 = await send(c, { ':path': '/reset-me' });
  assert.equal(r1.rstCode, 0xd);
  const req = c.request({ ':method': 'POST', ':path': '/slow' });
  req.on('error', () => {});
  await eventually(() => held?.head.target === '/slow');
  req.close(0x8);
  await eventually(() => resets.length === 1);
  assert.equal(resets[0]!.h2Code, 0x8);
  assert.equal(resets[0]!.error.code, 'MESH_CLIENT_RESET');
});

test('server: graceful close lets the in-flight stream finish and refuses new ones', async () => {
  const pending: ServerStream[] = [];
  const handler = {
    onRequest(s: ServerStream): void {
      pending.push(s);
      s.listen({ onData: () => true, onEnd: () => {}, onReset: () => {}, onWritable: () => {} });
    },
  };
  const { srv, c } = await setup(handler as never);
  const first = send(c, { ':path': '/inflight' });
  await eventually(() => pending.length === 1);
  let goaway = false;
  c.on('goaway', () => (goaway = true));
  srv.conns[0]!.close();
  await eventually(() => goaway);
  const refused = c.closed ? undefined : send(c, { ':path': '/late' }).catch(() => undefined);
  pending[0]!.respond({ status: 204, reason: '', version: 20, headers: [] }, true);
  assert.equal((await first).status, 204);
  await refused;
  assert.equal(pending.length, 1);
  await eventually(() => srv.conns[0]!.dead);
});

test('server: a client closing without GOAWAY resets every stream and the socket is destroyed', async () => {
  const resets: StreamReset[] = [];
  const handler = {
    onRequest(s: ServerStream): void {
      s.listen({ onData: () => true, onEnd: () => {}, onReset: (r) => resets.push(r), onWritable: () => {} });
    },
  };
  const srv = await ourServer(handler as never);
  servers.push(srv);
  const sock = net.connect(srv.port, '127.0.0.1');
  const c = http2.connect(`http://127.0.0.1:${srv.port}`, { createConnection: () => sock });
  c.on('error', () => {});
  for (let i = 0; i < 3; i++) c.request({ ':method': 'POST', ':path': `/${i}` }).on('error', () => {});
  await eventually(() => srv.conns[0]?.streams.size === 3);
  sock.destroy(); // like curl exiting: FIN, no GOAWAY
  await eventually(() => resets.length === 3);
  assert.ok(resets.every((r) => r.error.code === 'MESH_CLIENT_RESET'));
  await eventually(() => srv.conns[0]!.socket.destroyed && srv.conns[0]!.streams.size === 0);
});

test('server: a header list beyond the limit is answered 431 on that stream only', async () => {
  const { c } = await setup(new Echo(), { maxHeaderListSize: 4096 });
  const big = await send(c, { ':path': '/big', 'x-big': 'a'.repeat(8000) });
  assert.equal(big.status, 431);
  assert.equal(big.headers['mesh-proxy-error'], 'MESH_HEADERS_TOO_LARGE');
  const ok = await send(c, { ':path': '/small' });
  assert.equal(ok.status, 200);
});

test('server: malformed request heads cost their stream only', async () => {
  const { c } = await setup();
  const bad = await send(c, { ':path': '/x', 'content-length': '5' }); // END_STREAM with a length of 5
  assert.equal(bad.rstCode, 0x1);
  const ok = await send(c, { ':path': '/fine' });
  assert.equal(ok.status, 200);
});

test('server: a slow request-body reader back-pressures the client within the stream window', async () => {
  let stalled = true;
  let got = 0;
  let stream: ServerStream | undefined;
  let done = false;
  const handler = {
    onRequest(s: ServerStream): void {
      stream = s;
      s.listen({
        onData: (c) => ((got += c.length), !stalled),
        onEnd: () => {
          done = true;
          s.respond({ status: 200, reason: '', version: 20, headers: [] }, true);
        },
        onReset: () => {},
        onWritable: () => {},
      });
    },
  };
  const { srv, c } = await setup(handler as never);
  const req = c.request({ ':method': 'POST', ':path': '/slow' });
  req.on('error', () => {});
  const body = randomBytes(2 << 20);
  req.end(body);
  await new Promise((r) => setTimeout(r, 300));
  // One chunk taken with "no more", then the stream window (64 KiB) at most held.
  assert.ok(got <= 65535, `delivered ${got}`);
  const conn = srv.conns[0]!;
  assert.ok(conn.streams.get(1)!.held <= 65535);
  stalled = false;
  stream!.resume();
  await eventually(() => done);
  assert.equal(got, body.length);
});

test('server: a complete response before the request body ends asks the client to stop (RST_STREAM NO_ERROR)', async () => {
  const resets: StreamReset[] = [];
  const handler = {
    onRequest(s: ServerStream): void {
      s.listen({ onData: () => true, onEnd: () => {}, onReset: (r) => resets.push(r), onWritable: () => {} });
      s.respond({ status: 413, reason: '', version: 20, headers: [] }, false);
      s.write(Buffer.from('too big'));
      s.end();
    },
  };
  const { srv, c } = await setup(handler as never);
  const req = c.request({ ':method': 'POST', ':path': '/upload' });
  req.on('error', () => {});
  req.write(randomBytes(100_000));
  const chunks: Buffer[] = [];
  let status = 0;
  req.on('response', (h) => (status = Number(h[':status'])));
  req.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => req.on('close', r));
  assert.equal(status, 413);
  assert.equal(Buffer.concat(chunks).toString(), 'too big'); // the body tail arrives intact before the reset
  assert.equal(req.rstCode, 0);
  // The exchange is complete, not cut: the handler hears of no reset (it stops the upstream request itself).
  assert.deepEqual(resets, []);
  await eventually(() => srv.conns[0]!.streams.size === 0);
});
