// The forwarder and HTTP stage end to end, in-process on loopback: real
// node:http and node:http2 clients and backends, raw sockets where the exact
// bytes matter, our codecs in between. Each case asserts something a proxy
// gets wrong in practice: framing, header fidelity, trailers, backpressure,
// cancellation, failure answers and the metrics they leave.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { addr, closedPort, startMesh, startProxy, samples, sha, type MeshPair, type PoolFactory, type ProxyNode } from './testkit.js';

// Filled in when the h1 client codec lands; the h2-only cases never ask for a pool.
const noPool: PoolFactory = () => {
  throw new Error('no HTTP/1 pool in an h2-only case');
};

const MB = 1 << 20;
const BIG = randomBytes(5 * MB);
const BIG_SHA = sha(BIG);

// ---- node:http2 backend and client ----

interface H2Seen {
  path: string;
  headers: http2.IncomingHttpHeaders;
  /** RST_STREAM code the backend's stream closed with (0 when it ended cleanly). */
  closed: Promise<number>;
}

/**
 * An h2c backend. Paths: /echo (body back, its sha256 in a trailer), /trailers
 * (a body then trailers), /grpc-error (trailers-only: HEADERS with END_STREAM
 * and grpc-status), /status/N, /download (5 MB), /hang (a chunk, then nothing),
 * /die (a chunk, then the connection destroyed).
 */
async function h2Backend(): Promise<{ port: number; seen: H2Seen[]; close(): Promise<void> }> {
  const seen: H2Seen[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const rawSockets = new Set<net.Socket>();
  server.on('connection', (raw: net.Socket) => {
    rawSockets.add(raw);
    raw.on('close', () => rawSockets.delete(raw));
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    seen.push({ path, headers, closed: new Promise((r) => stream.on('close', () => r(stream.rstCode ?? 0))) });
    stream.on('error', () => {});
    if (path === '/echo') {
      const h = createHash('sha256');
      stream.on('data', (c: Buffer) => h.update(c));
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-request-sha': h.digest('hex') }));
      stream.pipe(stream);
    } else if (path === '/trailers') {
      stream.respond({ ':status': 200, 'x-head': 'h' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-checksum': 'abc' }));
      stream.end('body before trailers');
    } else if (path === '/grpc-error') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'unavailable' }, { endStream: true });
    } else if (path.startsWith('/status/')) {
      stream.respond({ ':status': Number(path.slice(8)) });
      stream.end('s');
    } else if (path === '/download') {
      stream.respond({ ':status': 200, 'content-length': String(BIG.length) });
      stream.end(BIG);
    } else if (path === '/hang') {
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(1024, 1));
    } else if (path === '/die') {
      stream.respond({ ':status': 200 });
      // The raw socket: node:http2 refuses destroy() through its session's socket proxy.
      stream.write(Buffer.alloc(32 * 1024, 2), () => {
        for (const raw of rawSockets) raw.destroy();
      });
    } else {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

interface H2Result {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** True when the stream ended cleanly ('end'), false when it was reset. */
  ended: boolean;
  /** node:http2 raised 'error' on the stream: what most clients act on. */
  errored: boolean;
  rstCode: number;
}

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Result> {
  return new Promise((resolve) => {
    const req = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let ended = false;
    let errored = false;
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (ended = true));
    req.on('error', () => (errored = true));
    req.on('close', () => resolve({ headers: head, body: Buffer.concat(chunks), trailers, ended, errored, rstCode: req.rstCode ?? 0 }));
    if (body !== undefined) req.end(body);
  });
}

function h2Connect(port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  return s;
}

// ---- h2 → h2 (one stage) and h2 → mesh h2 → h2 (both stages) ----

for (const meshed of [false, true]) {
  describe(meshed ? 'h2 → mesh h2 → h2' : 'h2 → h2', () => {
    let backend: Awaited<ReturnType<typeof h2Backend>>;
    let proxy: ProxyNode;
    let mesh: MeshPair | undefined;
    let session: http2.ClientHttp2Session;

    before(async () => {
      backend = await h2Backend();
      if (meshed) {
        mesh = await startMesh('h2', addr(backend.port), noPool);
        proxy = mesh.client;
      } else {
        proxy = await startProxy({ direction: 'outbound', protocol: 'h2', target: addr(backend.port), h1Pool: noPool });
      }
      session = h2Connect(proxy.port);
    });
    after(async () => {
      session.destroy();
      await (mesh ? mesh.close() : proxy.close());
      await backend.close();
    });

    it('relays a body and its trailers', async () => {
      const r = await h2Request(session, { ':path': '/trailers' });
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.headers['x-head'], 'h');
      assert.equal(r.body.toString(), 'body before trailers');
      assert.equal(r.ended, true);
      assert.equal(r.trailers?.['grpc-status'], '0');
      assert.equal(r.trailers?.['x-checksum'], 'abc');
    });

    it('relays a trailers-only response (HEADERS with END_STREAM) as one', async () => {
      const r = await h2Request(session, { ':path': '/grpc-error', 'content-type': 'application/grpc', te: 'trailers' });
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.headers['grpc-status'], '14');
      assert.equal(r.headers['grpc-message'], 'unavailable');
      assert.equal(r.body.length, 0);
      assert.equal(r.ended, true);
      // Had the proxy split it into HEADERS + empty DATA or trailers, a gRPC client would see no status in the head.
      assert.equal(r.trailers, undefined);
    });

    it('carries 5 MB both ways on one stream, intact', async () => {
      const r = await h2Request(session, { ':method': 'POST', ':path': '/echo' }, BIG);
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.ended, true);
      assert.equal(r.trailers?.['x-request-sha'], BIG_SHA, 'the backend received the upload intact');
      assert.equal(r.body.length, BIG.length);
      assert.equal(sha(r.body), BIG_SHA, 'the client received the echo intact');
    });

    it('sends the request headers through, te: trailers included', async () => {
      const r = await h2Request(session, { ':path': '/status/204', 'x-a': ['1', '2'], te: 'trailers', 'user-agent': 'ua' });
      assert.equal(r.headers[':status'], 204);
      const got = backend.seen.at(-1)!.headers;
      assert.equal(got['x-a'], '1, 2');
      assert.equal(got.te, 'trailers');
      assert.equal(got['user-agent'], 'ua');
      for (const k of Object.keys(got)) assert.ok(!k.startsWith('mesh-orig-'), `${k} leaked to the app`);
    });

    it('cancels the backend stream with CANCEL when the client sends RST_STREAM(CANCEL)', async () => {
      const req = session.request({ ':path': '/hang' });
      req.on('error', () => {});
      await once(req, 'response');
      await once(req, 'data');
      const seen = backend.seen.at(-1)!;
      assert.equal(seen.path, '/hang');
      req.close(http2.constants.NGHTTP2_CANCEL);
      assert.equal(await seen.closed, http2.constants.NGHTTP2_CANCEL);
    });

    it('resets the client stream when the backend connection dies mid-response', async () => {
      const r = await h2Request(session, { ':path': '/die' });
      assert.equal(r.headers[':status'], 200);
      assert.ok(r.body.length < 64 * 1024);
      // node:http2 emits 'end' even for a reset stream: the RST code is what tells.
      assert.notEqual(r.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'a cut body must not look complete');
    });

    it(
      'resets it with an error code a client treats as a failure (not CANCEL)',
      { todo: 'h2/client.ts lostReset turns a lost upstream connection into CANCEL, and node:http2 clients treat a CANCEL reset as a clean end (no error event)' },
      async () => {
        const r = await h2Request(session, { ':path': '/die' });
        assert.equal(r.headers[':status'], 200);
        assert.ok(r.errored, 'no error event: the truncated body reads as complete');
        assert.notEqual(r.rstCode, http2.constants.NGHTTP2_CANCEL);
      },
    );
  });
}

describe('h2 failures', () => {
  it('answers 502 MESH_CONNECT_REFUSED when the backend port is closed (h2c, and behind the server proxy)', async () => {
    const port = await closedPort();
    const direct = await startProxy({ direction: 'outbound', protocol: 'h2', target: addr(port), h1Pool: noPool });
    const mesh = await startMesh('h2', addr(port), noPool);
    try {
      for (const p of [direct, mesh.client]) {
        const s = h2Connect(p.port);
        const r = await h2Request(s, { ':path': '/' });
        s.destroy();
        assert.equal(r.headers[':status'], 502);
        assert.equal(r.headers['mesh-proxy-error'], 'MESH_CONNECT_REFUSED');
        assert.equal(r.ended, true);
      }
    } finally {
      await direct.close();
      await mesh.close();
    }
  });
});

describe('h2 metrics through both stages', () => {
  it('counts requests and responses by status, classification and authority on each proxy', async () => {
    const backend = await h2Backend();
    const mesh = await startMesh('h2', addr(backend.port), noPool);
    const s = h2Connect(mesh.client.port);
    try {
      const authority = 'api.test:8080';
      for (const path of ['/status/200', '/status/200', '/status/200', '/status/503']) assert.ok((await h2Request(s, { ':path': path, ':authority': authority })).ended);
      const g = await h2Request(s, { ':path': '/grpc-error', ':authority': authority });
      assert.equal(g.headers['grpc-status'], '14');
      for (const [node, direction] of [[mesh.client, 'outbound'], [mesh.server, 'inbound']] as const) {
        const text = await node.metrics.registry.metrics();
        const req = samples(text, 'request_total').filter((x) => x.labels.authority === authority);
        assert.deepEqual(req.map((x) => [x.labels.direction, x.value]), [[direction, 5]], `${direction} request_total`);
        const res = samples(text, 'response_total').filter((x) => x.labels.authority === authority);
        const by = (code: string, cls: string, grpc?: string): number | undefined =>
          res.find((x) => x.labels.status_code === code && x.labels.classification === cls && x.labels.grpc_status === grpc)?.value;
        assert.equal(by('200', 'success'), 3, `${direction} 200 success`);
        assert.equal(by('503', 'failure'), 1, `${direction} 503 failure`);
        assert.equal(by('200', 'failure', '14'), 1, `${direction} trailers-only gRPC error is a failure`);
        assert.equal(res.length, 3, `${direction}: no other response series`);
      }
    } finally {
      s.destroy();
      await mesh.close();
      await backend.close();
    }
  });
});
