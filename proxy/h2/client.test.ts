// Our client role against node:http2 (nghttp2) as the server.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import type { H2ClientConnection } from './client.js';
import { eventually, get, ourClient, Recorder, sha } from './testkit.js';

const closers: (() => void)[] = [];
after(() => closers.forEach((c) => c()));

async function nodeServer(onStream: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<{ port: number; srv: http2.Http2Server; sessions: http2.ServerHttp2Session[] }> {
  const srv = http2.createServer({ settings });
  const sessions: http2.ServerHttp2Session[] = [];
  srv.on('session', (s) => sessions.push(s));
  srv.on('stream', (s, h) => {
    s.on('error', () => {});
    onStream(s, h);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sessions) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, srv, sessions };
}

function echo(s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): void {
  if (h['x-status'] !== undefined) return void s.respond({ ':status': Number(h['x-status']), 'grpc-status': '2' }, { endStream: true });
  s.respond({ ':status': 200, 'x-path': String(h[':path']), 'x-host': String(h[':authority']) }, { waitForTrailers: true });
  s.on('wantTrailers', () => s.sendTrailers({ 'x-done': 'yes' }));
  s.pipe(s);
}

async function client(port: number, options: Parameters<typeof ourClient>[1] = {}): Promise<H2ClientConnection> {
  const c = await ourClient(port, options);
  closers.push(() => c.destroy());
  return c;
}

test('client: GET, and a 6 MB POST echoed with trailers, checksummed', async () => {
  const { port } = await nodeServer(echo);
  const c = await client(port);
  const r = new Recorder();
  c.request(get('/a?b'), true, r);
  await r.done;
  assert.equal(r.head!.status, 200);
  assert.equal(r.head!.headers[r.head!.headers.indexOf('x-path') + 1], '/a?b');
  assert.deepEqual(r.trailers, ['x-done', 'yes']);
  const body = randomBytes(6 << 20);
  const p = new Recorder();
  const s = c.request(get('/up', [], 'POST'), false, p);
  for (let i = 0; i < body.length; i += 100_000) s.write(body.subarray(i, i + 100_000));
  s.end();
  await p.done;
  assert.equal(p.reset, undefined);
  assert.equal(sha(p.body()), sha(body));
});

test('client: an HTTP/1-shaped head (Host, upper case, connection fields) is carried correctly', async () => {
  let seen: http2.IncomingHttpHeaders = {};
  const { port } = await nodeServer((s, h) => {
    seen = h;
    s.respond({ ':status': 204 }, { endStream: true });
  });
  const c = await client(port);
  const r = new Recorder();
  c.request({ method: 'GET', target: '/x', scheme: undefined, authority: undefined, version: 11, headers: ['Host', 'h1.example', 'Connection', 'keep-alive', 'X-Mixed', 'v', 'TE', 'trailers'] }, true, r);
  await r.done;
  assert.equal(r.head!.status, 204);
  assert.equal(seen[':authority'], 'h1.example');
  assert.equal(seen['x-mixed'], 'v');
  assert.equal(seen.te, 'trailers');
  assert.equal(seen.connection, undefined);
});

test('client: trailers-only response, 100-continue', async () => {
  const { port } = await nodeServer((s, h) => {
    if (h.expect !== undefined) {
      s.additionalHeaders({ ':status': 100 });
      s.respond({ ':status': 200 });
      s.pipe(s);
      return;
    }
    echo(s, h);
  });
  const c = await client(port);
  const t = new Recorder();
  c.request(get('/g', ['x-status', '200']), true, t);
  await t.done;
  assert.equal(t.head!.status, 200);
  assert.equal(t.head!.headers[t.head!.headers.indexOf('grpc-status') + 1], '2');
  const e = new Recorder();
  const s = c.request(get('/e', ['expect', '100-continue'], 'POST'), false, e);
  await eventually(() => e.continued);
  s.end(); // no body after all
  await e.done;
  assert.equal(e.head!.status, 200);
});

test('client: RST_STREAM both ways keeps its code', async () => {
  let gotCode = -1;
  const { port } = await nodeServer((s, h) => {
    if (h[':path'] === '/rst') return void s.close(0xd);
    s.on('close', () => (gotCode = s.rstCode ?? -1));
    s.respond({ ':status': 200 });
  });
  const c = await client(port);
  const r = new Recorder();
  c.request(get('/rst'), true, r);
  await r.done;
  assert.equal(r.reset!.h2Code, 0xd);
  assert.equal(r.reset!.error.code, 'MESH_UPSTREAM_RESET');
  const w = new Recorder();
  const s = c.request(get('/wait', [], 'POST'), false, w);
  await eventually(() => w.head !== undefined);
  s.reset({ h2Code: 0x8, error: undefined as never });
  await eventually(() => gotCode === 0x8);
});

test('client: RST_STREAM(NO_ERROR) after a complete response that is still queued (paused reader) loses nothing (RFC 9113 §8.1)', async () => {
  // A server that answers before the request body ends asks the client to stop
  // with RST_STREAM(NO_ERROR) (nghttp2 does, for a GET whose END_STREAM came in
  // an empty DATA frame). The response must still be delivered whole: seen in
  // CI as a 200 with no body and CANCEL when the reader was briefly paused.
  const body = randomBytes(40_000); // three DATA frames, within the stream window
  let rstSent!: () => void;
  const sent = new Promise<void>((resolve) => (rstSent = resolve));
  const { port } = await nodeServer((s, h) => {
    if (h[':path'] === '/after') return void s.respond({ ':status': 204 }, { endStream: true });
    s.respond({ ':status': 200 });
    s.end(body, () => s.close(0));
    s.on('close', () => rstSent());
  });
  const c = await client(port);
  const r = new Recorder();
  r.stall = true; // the first chunk pauses the stream: the rest and the end queue behind it
  const s = c.request(get('/early', [], 'POST'), false, r);
  await sent;
  // Frames arrive in order: once a later stream's response is in, the RST_STREAM was read (while paused).
  const after = new Recorder();
  c.request(get('/after'), true, after);
  await after.done;
  assert.ok(r.bytes > 0 && r.bytes < body.length, `paused after ${r.bytes} bytes`);
  r.stall = false;
  s.resume();
  await r.done;
  assert.equal(r.reset, undefined, `no reset: ${r.reset?.error.message}`);
  assert.equal(sha(r.body()), sha(body));
  // Writing and ending the request afterwards is harmless: nothing more is sent on the stream.
  assert.equal(s.write(Buffer.from('late')), true);
  s.end();
  const again = new Recorder();
  c.request(get('/early'), true, again);
  await again.done;
  assert.equal(again.head!.status, 200);
});

test('client: resets beyond our budget wait for it, and meanwhile the stream is starved, not drained', async () => {
  // Three 4 MB responses cancelled at once with a budget of one reset: the first
  // goes now, the other two when the budget refills (10/s here). Until then
  // their windows stay shut: the server sends them nothing beyond what was in
  // flight (it would otherwise push 4 MB each at a body nobody reads), and a
  // fourth stream on the same connection is served meanwhile.
  const closed = new Map<string, number>();
  const sent = new Map<string, number>();
  const { port } = await nodeServer((s, h) => {
    const path = String(h[':path']);
    s.on('close', () => closed.set(path, s.rstCode ?? -1));
    if (path === '/small') return void s.respond({ ':status': 200 }, { endStream: false }), void s.end('ok');
    // A head that arrives after the stream was starved (its reset still waiting for the budget).
    if (path === '/late') return void setTimeout(() => !s.destroyed && s.respond({ ':status': 200 }, { endStream: true }), 50);
    s.respond({ ':status': 200 });
    const chunk = Buffer.alloc(16 * 1024, 7);
    let left = 4 << 20;
    const pump = (): void => {
      while (left > 0) {
        left -= chunk.length;
        sent.set(path, (sent.get(path) ?? 0) + chunk.length);
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  const c = await client(port, { limits: { ourResetBurst: 1, ourResetRate: 10 } });
  const rs = ['/big/1', '/big/2', '/big/3'].map((p) => {
    const r = new Recorder();
    r.stall = true;
    return { p, r, s: c.request(get(p), true, r) };
  });
  await eventually(() => rs.every((x) => x.r.bytes > 0));
  const t0 = performance.now();
  for (const x of rs) x.s.reset({ h2Code: 0x8, error: undefined as never });
  await eventually(() => closed.get('/big/1') === 0x8);
  const small = new Recorder();
  c.request(get('/small'), true, small);
  await small.done;
  assert.equal(small.head!.status, 200, 'the connection serves others meanwhile');
  const late = new Recorder();
  c.request(get('/late'), true, late).reset({ h2Code: 0x8, error: undefined as never });
  await eventually(() => closed.get('/big/2') === 0x8 && closed.get('/big/3') === 0x8, 5000);
  await eventually(() => closed.has('/late'), 5000);
  const after = new Recorder();
  c.request(get('/small'), true, after);
  await after.done;
  assert.equal(after.head!.status, 200, 'a late head on a starved stream is ignored; the connection lives');
  assert.ok(performance.now() - t0 >= 90, 'the deferred resets waited for the budget');
  // What node wrote into its stream buffers is bounded by our window and its own buffering, far below 4 MB.
  for (const p of ['/big/2', '/big/3']) assert.ok((sent.get(p) ?? 0) < 1 << 20, `${p}: ${sent.get(p)} bytes pushed`);
});

test('client: GOAWAY lets in-flight streams finish; queued and new ones fail MESH_H2_REFUSED', async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const { port, sessions } = await nodeServer((s) => held.push(s), { maxConcurrentStreams: 1 });
  const c = await client(port);
  const first = new Recorder();
  c.request(get('/1'), true, first);
  await eventually(() => held.length === 1);
  const queued = new Recorder();
  c.request(get('/2'), true, queued); // beyond the peer's limit of 1: waits
  assert.equal(c.load, 2);
  sessions[0]!.goaway(0, 1); // last-stream-id 1
  await queued.done;
  assert.equal(queued.reset!.error.code, 'MESH_H2_REFUSED');
  assert.equal(c.isAvailable(), false);
  const late = new Recorder();
  c.request(get('/3'), true, late);
  await late.done;
  assert.equal(late.reset!.error.code, 'MESH_H2_REFUSED');
  held[0]!.respond({ ':status': 200 });
  held[0]!.end('finished');
  await first.done;
  assert.equal(first.body().toString(), 'finished');
  await eventually(() => c.dead);
});

test('client: streams beyond the peer limit queue and all complete', async () => {
  let open = 0;
  let peak = 0;
  const { port } = await nodeServer((s) => {
    peak = Math.max(peak, ++open);
    setTimeout(() => {
      open--;
      s.respond({ ':status': 200 });
      s.end('ok');
    }, 5);
  }, { maxConcurrentStreams: 3 });
  const c = await client(port);
  await new Promise((r) => setTimeout(r, 50)); // the peer's SETTINGS
  const rs = Array.from({ length: 20 }, () => new Recorder());
  rs.forEach((r, i) => c.request(get(`/${i}`), true, r));
  await Promise.all(rs.map((r) => r.done));
  assert.ok(rs.every((r) => r.body().toString() === 'ok'));
  assert.ok(peak <= 3, `peak ${peak}`);
});

test('client: a slow response reader holds at most the stream window, then completes', async () => {
  const body = randomBytes(3 << 20);
  const { port } = await nodeServer((s) => {
    s.respond({ ':status': 200 });
    s.end(body);
  });
  const c = await client(port);
  const r = new Recorder();
  r.stall = true;
  const s = c.request(get('/big'), true, r);
  await new Promise((res) => setTimeout(res, 300));
  assert.ok(r.bytes <= 65535 + 16384, `got ${r.bytes}`);
  const held = c.streams.get(1)!.held;
  assert.ok(held <= 65535, `held ${held}`);
  r.stall = false;
  s.resume();
  await r.done;
  assert.equal(sha(r.body()), sha(body));
});

test('client: the peer vanishing resets every stream; the connection is unavailable', async () => {
  const { port, srv, sessions } = await nodeServer(() => {});
  const raw: net.Socket[] = [];
  srv.on('connection', (sock: net.Socket) => raw.push(sock));
  const c = await client(port);
  const rs = [new Recorder(), new Recorder()];
  rs.forEach((r) => c.request(get('/hang'), true, r));
  await eventually(() => sessions.length === 1 && c.streams.size === 2);
  raw[0]!.destroy(); // the socket closes, no GOAWAY
  await Promise.all(rs.map((r) => r.done));
  assert.ok(rs.every((r) => r.reset?.error.code === 'MESH_UPSTREAM_RESET'), rs.map((r) => r.reset?.error.message).join());
  assert.equal(c.isAvailable(), false);
  await eventually(() => c.socket.destroyed);
});

test('client: a response head beyond our limit resets that stream only', async () => {
  const { port } = await nodeServer((s, h) => {
    s.respond(h[':path'] === '/big' ? { ':status': 200, 'x-big': 'b'.repeat(9000) } : { ':status': 200 }, { endStream: true });
  });
  const c = await ourClient(port, { maxHeaderListSize: 4096 });
  closers.push(() => c.destroy());
  const big = new Recorder();
  c.request(get('/big'), true, big);
  await big.done;
  assert.equal(big.reset!.error.code, 'MESH_HEADERS_TOO_LARGE');
  const ok = new Recorder();
  c.request(get('/ok'), true, ok);
  await ok.done;
  assert.equal(ok.head!.status, 200);
});

test('client keepalive: a peer that goes silent (no FIN, no RST) is found by PING; its request is reset, not left waiting', async () => {
  // Answers the preface and SETTINGS once, then nothing ever again, as a lost node.
  const quiet = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.write(Buffer.concat([Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])])));
  });
  await new Promise<void>((r) => quiet.listen(0, '127.0.0.1', r));
  closers.push(() => quiet.close());
  let closed = false;
  const c = await client((quiet.address() as net.AddressInfo).port, { keepaliveMs: 100, onClose: () => (closed = true) });
  const r = new Recorder();
  const t0 = performance.now();
  c.request(get('/hang'), true, r);
  await r.done;
  const took = performance.now() - t0;
  assert.equal(r.reset?.error.code, 'MESH_UPSTREAM_RESET');
  assert.match(r.reset!.error.message, /no answer to a PING within 100 ms/);
  assert.ok(took >= 150 && took < 2000, `found after ${took.toFixed(0)} ms (two quiet periods)`);
  assert.equal(closed, true);
});

test('client keepalive: a live peer answers the PINGs and the connection stays, idle or not', async () => {
  const { port } = await nodeServer(echo);
  const c = await client(port, { keepaliveMs: 30 });
  // Several quiet periods with no stream open: PING, answer, PING, answer...
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.dead, false);
  const r = new Recorder();
  c.request(get('/after'), true, r);
  await r.done;
  assert.equal(r.head!.status, 200);
});
