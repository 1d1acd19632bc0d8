// The forwarder and HTTP stage end to end, in-process on loopback: real
// node:http and node:http2 clients and backends, raw sockets where the exact
// bytes matter, our codecs in between. Each case asserts something a proxy
// gets wrong in practice: framing, header fidelity, trailers, backpressure,
// cancellation, failure answers and the metrics they leave.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { H1Pool } from '../h1/index.js';
import { resetAndDestroy } from '../transport/tls.js';
import { addr, API_ID, closedPort, eventually, rawExchange, startMesh, startProxy, samples, sha, type MeshPair, type PoolFactory, type ProxyNode } from './testkit.js';
import { BIG, BIG20_SHA, BIG_SHA, endToEndPairs, h1Backend, h1Request, h2Backend, h2Connect, h2Request, MB, pairs, rawBackend, splitResponse } from './testkit-apps.js';

// As proxy/index.ts builds it.
const pool: PoolFactory = (dial) => new H1Pool({ dial, reset: resetAndDestroy });
// The h2-only cases must never reach an HTTP/1 pool.
const noPool: PoolFactory = () => {
  throw new Error('no HTTP/1 pool in an h2-only case');
};

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

    it('cancels the backend stream when the client connection goes away mid-response', async () => {
      const own = h2Connect(proxy.port);
      const req = own.request({ ':path': '/hang' });
      req.on('error', () => {});
      await once(req, 'response');
      await once(req, 'data');
      const seen = backend.seen.at(-1)!;
      assert.equal(seen.path, '/hang');
      own.destroy();
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

// ---- h1 → h1 (one stage) and h1 → mesh h2 → h1 (both stages) ----

for (const meshed of [false, true]) {
  describe(meshed ? 'h1 → mesh h2 → h1' : 'h1 → h1', () => {
    let backend: Awaited<ReturnType<typeof h1Backend>>;
    let proxy: ProxyNode;
    let mesh: MeshPair | undefined;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

    before(async () => {
      backend = await h1Backend();
      if (meshed) {
        mesh = await startMesh('h1', addr(backend.port), pool);
        proxy = mesh.client;
      } else proxy = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
    });
    after(async () => {
      agent.destroy();
      await (mesh ? mesh.close() : proxy.close());
      await backend.close();
    });

    it('relays status, reason, headers in case and order, and body; reuses both connections', async () => {
      const before = proxy.contexts.length;
      const backendConns = backend.connections;
      for (let i = 0; i < 3; i++) {
        const r = await h1Request(proxy.port, agent, { path: '/fine' });
        assert.equal(r.status, 299);
        assert.equal(r.reason, 'Fine Thanks');
        assert.deepEqual(endToEndPairs(r.rawHeaders), [['X-Zed', '1'], ['x-alpha', '2'], ['X-Zed', '3'], ['Content-Length', '2']]);
        // The backend's Keep-Alive (timeout=5) is hop-by-hop: any the client sees is the proxy's own.
        assert.ok(!pairs(r.rawHeaders).some(([n, v]) => /^keep-alive$/i.test(n) && v === 'timeout=5'), 'the backend’s Keep-Alive leaked');
        assert.equal(r.body.toString(), 'ok');
      }
      assert.equal(proxy.contexts.length - before, 1, 'one client connection carried the three requests');
      assert.equal(backend.connections - backendConns, 1, 'one pooled upstream connection carried them');
      if (mesh) assert.deepEqual(mesh.client.connector.meshedDials.map((d) => [d.peer, d.protocol]), [[API_ID, 'h2']], 'one meshed h2 connection, to the right identity');
    });

    it('gives the client the response head byte for byte', async () => {
      const text = await rawExchange(proxy.port, 'GET /fine HTTP/1.1\r\nHost: api.test\r\n\r\n', (t) => t.endsWith('ok'));
      const r = splitResponse(text);
      assert.equal(r.status, 'HTTP/1.1 299 Fine Thanks');
      assert.deepEqual(r.fields, ['X-Zed: 1', 'x-alpha: 2', 'X-Zed: 3', 'Content-Length: 2']);
      assert.equal(r.body, 'ok');
      assert.doesNotMatch(text, /timeout=5/, 'the backend’s Keep-Alive leaked');
    });

    it('delivers the request as sent: target form, name case, order, interleaved duplicates', async () => {
      const absolute = await rawExchange(
        proxy.port,
        'GET http://api.test:8080/p/../q?x=1 HTTP/1.1\r\nHost: api.test:8080\r\nX-Custom: a\r\naccept: */*\r\nX-Custom: b\r\nCookie: c=1\r\nx-custom: c\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n',
        (t) => t.endsWith('}'),
      );
      const a = JSON.parse(absolute.slice(absolute.indexOf('{'))) as { method: string; url: string; rawHeaders: string[] };
      assert.equal(a.url, 'http://api.test:8080/p/../q?x=1', 'absolute-form kept, not normalised');
      assert.deepEqual(endToEndPairs(a.rawHeaders), [['Host', 'api.test:8080'], ['X-Custom', 'a'], ['accept', '*/*'], ['X-Custom', 'b'], ['Cookie', 'c=1'], ['x-custom', 'c']]);
      const origin = await rawExchange(proxy.port, 'DELETE /items/1?force HTTP/1.1\r\nhOsT: api.test\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\nX-A: 4\r\nContent-Length: 0\r\n\r\n', (t) => t.endsWith('}'));
      const o = JSON.parse(origin.slice(origin.indexOf('{'))) as { method: string; url: string; rawHeaders: string[] };
      assert.equal(o.method, 'DELETE');
      assert.equal(o.url, '/items/1?force');
      assert.deepEqual(endToEndPairs(o.rawHeaders), [['hOsT', 'api.test'], ['X-A', '1'], ['x-a', '2'], ['X-B', '3'], ['X-A', '4'], ['Content-Length', '0']]);
    });

    it('serves an HTTP/1.0 client: request as sent, response it can read (close-delimited, not chunked)', async () => {
      const text = await rawExchange(proxy.port, 'GET /echo HTTP/1.0\r\nHost: api.test\r\nUser-Agent: old/1.0\r\n\r\n');
      const seen = backend.seen.at(-1)!;
      assert.equal(seen.url, '/echo');
      assert.deepEqual(endToEndPairs(seen.rawHeaders), [['Host', 'api.test'], ['User-Agent', 'old/1.0']]);
      assert.match(text, /^HTTP\/1\.[01] 200 OK\r\n/);
      // The backend answered chunked; a 1.0 client cannot read chunks: the body must end with the connection.
      const chunked = await rawExchange(proxy.port, 'GET /trailers HTTP/1.0\r\nHost: api.test\r\n\r\n');
      assert.doesNotMatch(chunked, /transfer-encoding/i);
      assert.equal(chunked.slice(chunked.indexOf('\r\n\r\n') + 4), 'part one, part two');
    });

    it(
      'forwards an HTTP/1.0 request without Host so that an HTTP/1.1 server accepts it',
      async () => {
        const text = await rawExchange(proxy.port, 'GET /echo HTTP/1.0\r\nUser-Agent: old/1.0\r\n\r\n');
        assert.match(text, /^HTTP\/1\.[01] 200 /);
      },
    );

    it('drops hop-by-hop fields both ways, those the Connection field names too', async () => {
      const r = await h1Request(proxy.port, agent, {
        path: '/echo',
        // A raw list: node:http adds no Host to one.
        headers: ['Host', 'api.test', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'Keep-Alive', 'timeout=5', 'Proxy-Authorization', 'Basic eA==', 'TE', 'trailers', 'X-Keep', 'yes'],
      });
      const seen = JSON.parse(r.body.toString()) as { rawHeaders: string[] };
      const names = endToEndPairs(seen.rawHeaders).map(([n]) => n.toLowerCase());
      for (const hop of ['x-hop', 'proxy-authorization', 'te']) assert.ok(!names.includes(hop), `${hop} reached the backend: ${names}`);
      // The proxy may say its own Connection: keep-alive; the client's tokens and Keep-Alive stay behind.
      for (const [n, v] of pairs(seen.rawHeaders)) {
        if (/^connection$/i.test(n)) assert.doesNotMatch(v, /x-hop/i);
        assert.ok(!(/^keep-alive$/i.test(n) && v === 'timeout=5'), 'the client’s Keep-Alive reached the backend');
      }
      assert.ok(names.includes('x-keep'));
      for (const n of names) assert.ok(!n.startsWith('mesh-orig-'), `${n} leaked to the app`);
      const res = await h1Request(proxy.port, agent, { path: '/hop' });
      const resNames = endToEndPairs(res.rawHeaders).map(([n]) => n.toLowerCase());
      for (const [n, v] of pairs(res.rawHeaders)) if (/^connection$/i.test(n)) assert.doesNotMatch(v, /x-resp-hop/i);
      for (const hop of ['x-resp-hop', 'proxy-authenticate']) assert.ok(!resNames.includes(hop), `${hop} reached the client: ${resNames}`);
      assert.ok(resNames.includes('x-end'));
      for (const n of resNames) assert.ok(!n.startsWith('mesh-orig-'), `${n} leaked to the client`);
    });

    for (const expectContinue of [false, true]) {
      it(`uploads and downloads 5 MB intact${expectContinue ? ' after the backend’s 100 Continue, relayed' : ''}`, async () => {
        const headers = expectContinue ? { 'content-length': BIG.length, expect: '100-continue' } : { 'content-length': BIG.length };
        const up = await h1Request(proxy.port, agent, { method: 'POST', path: '/upload', body: BIG, expectContinue, headers });
        assert.equal(up.status, 200);
        assert.equal(up.continued, expectContinue);
        assert.equal(up.body.toString(), `${BIG.length} ${BIG_SHA}`);
        if (expectContinue) assert.ok(pairs(backend.seen.at(-1)!.rawHeaders).some(([n, v]) => n.toLowerCase() === 'expect' && v === '100-continue'));
        const down = await h1Request(proxy.port, agent, { path: '/download' });
        assert.ok(down.complete);
        assert.equal(down.body.length, BIG.length);
        assert.equal(sha(down.body), BIG_SHA);
      });
    }

    it('answers HEAD with the length and no body, and the connection goes on', async () => {
      const s = net.connect(proxy.port, '127.0.0.1');
      try {
        await once(s, 'connect');
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.write('HEAD /fine HTTP/1.1\r\nHost: api.test\r\n\r\n');
        await eventually(() => text.includes('\r\n\r\n'));
        assert.match(text, /^HTTP\/1\.1 299 Fine Thanks\r\n/);
        assert.match(text, /\r\nContent-Length: 2\r\n/);
        text = '';
        // Had the proxy waited for the 2 bytes HEAD announced, this would never be answered.
        s.write('GET /fine HTTP/1.1\r\nHost: api.test\r\n\r\n');
        await eventually(() => text.endsWith('\r\n\r\nok'));
        assert.match(text, /^HTTP\/1\.1 299 Fine Thanks\r\n/, 'no body bytes of the HEAD response before the next head');
      } finally {
        s.destroy();
      }
    });

    it('forwards a chunked request body and its trailers', async () => {
      const text = await rawExchange(
        proxy.port,
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Req-Sum: 9\r\n\r\n',
        (t) => t.endsWith('}'),
      );
      const seen = JSON.parse(text.slice(text.indexOf('{'))) as { body: string; rawTrailers: string[] };
      assert.equal(seen.body, 'wikipedia');
      assert.deepEqual(pairs(seen.rawTrailers).map(([n, v]) => [n.toLowerCase(), v]), [['x-req-sum', '9']]);
    });

    it('relays a chunked response with trailers', async () => {
      const r = await h1Request(proxy.port, agent, { path: '/trailers' });
      assert.ok(r.complete);
      assert.equal(r.body.toString(), 'part one, part two');
      // h2 lower-cases trailer names between the proxies; their values and order stay.
      const got = pairs(r.rawTrailers).map(([n, v]) => [meshed ? n.toLowerCase() : n, v]);
      assert.deepEqual(got, meshed ? [['x-sum', 'abc'], ['x-other', 'z']] : [['X-Sum', 'abc'], ['X-Other', 'z']]);
    });
  });
}

// ---- failures over HTTP/1 ----

describe('h1 failures', () => {
  let backend: Awaited<ReturnType<typeof h1Backend>>;
  let direct: ProxyNode;
  let mesh: MeshPair;

  before(async () => {
    backend = await h1Backend();
    direct = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
    mesh = await startMesh('h1', addr(backend.port), pool);
  });
  after(async () => {
    await direct.close();
    await mesh.close();
    await backend.close();
  });

  it('answers 502 MESH_CONNECT_REFUSED when the backend port is closed (direct, and behind the server proxy)', async () => {
    const port = await closedPort();
    const d = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(port), h1Pool: pool });
    const m = await startMesh('h1', addr(port), pool);
    try {
      for (const p of [d, m.client]) {
        const r = await h1Request(p.port, false, { path: '/' });
        assert.equal(r.status, 502);
        assert.equal(pairs(r.rawHeaders).find(([n]) => n.toLowerCase() === 'mesh-proxy-error')?.[1], 'MESH_CONNECT_REFUSED');
        assert.ok(r.complete);
      }
    } finally {
      await d.close();
      await m.close();
    }
  });

  for (const meshed of [false, true]) {
    const via = meshed ? ' (via mesh)' : '';

    it(`cuts the client's response when the backend dies mid-body${via}`, async () => {
      const r = await h1Request((meshed ? mesh.client : direct).port, false, { path: '/die' });
      assert.equal(r.status, 200);
      assert.equal(r.complete, false, 'a cut chunked body must not end with a last chunk');
      assert.ok(r.body.length < 32 * 1024 + 1);
    });

    // A client that goes away mostly closes (FIN); one with unread bytes resets (RST).
    for (const how of ['resets', 'closes'] as const) {
      it(`cancels the backend's exchange promptly when the client ${how} its connection mid-response${via}`, async () => {
        const n = backend.seen.length;
        const req = http.request({ host: '127.0.0.1', port: (meshed ? mesh.client : direct).port, agent: false, path: '/hang' });
        req.on('error', () => {});
        req.end();
        const [res] = (await once(req, 'response')) as [http.IncomingMessage];
        await once(res, 'data');
        const t0 = performance.now();
        if (how === 'resets') req.socket!.resetAndDestroy();
        else req.destroy();
        await eventually(() => backend.seen.length > n);
        const closed = await Promise.race([backend.seen[n]!.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000).unref())]);
        assert.ok(closed !== undefined, 'the backend never saw its exchange close');
        assert.equal(closed.finished, false);
        assert.ok(closed.at - t0 < 1000, `backend noticed after ${Math.round(closed.at - t0)} ms`);
      });
    }
  }
});

// ---- backpressure ----

// A proxy that ignores backpressure reads the whole response from the backend
// into memory while its client is slow: 20 MB here. Memory is sampled while
// the reader is paused, after a forced GC and a turn for freed backing stores
// to be released, so that only what is still held counts. `external` already
// includes `arrayBuffers` (every Buffer): adding the two would count them twice.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
async function held(): Promise<number> {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  return process.memoryUsage().external;
}

describe('backpressure', () => {
  for (const meshed of [false, true]) {
    it(`holds a slow reader's 20 MB download to a few MB in the proxy${meshed ? ' (h1 → mesh h2 → h1)' : ' (h1 → h1)'}`, async () => {
      const backend = await h1Backend();
      const mesh = meshed ? await startMesh('h1', addr(backend.port), pool) : undefined;
      const proxy = mesh ? mesh.client : await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
      try {
        const base = await held();
        let peak = 0;
        const h = createHash('sha256');
        let got = 0;
        let nextSample = 0;
        await new Promise<void>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: proxy.port, agent: false, path: '/big20' }, (res) => {
            res.on('data', (c: Buffer) => {
              h.update(c);
              got += c.length;
              // A slow reader: a pause after every chunk, so the sockets behind fill up.
              res.pause();
              if (got < nextSample) return void setTimeout(() => res.resume(), 1);
              nextSample += MB;
              held().then((m) => {
                peak = Math.max(peak, m - base);
                res.resume();
              }, reject);
            });
            res.on('end', resolve);
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(got, 20 * MB);
        assert.equal(h.digest('hex'), BIG20_SHA);
        assert.ok(peak < 6 * MB, `the proxy held ${(peak / MB).toFixed(1)} MB beyond its baseline`);
      } finally {
        await (mesh ? mesh.close() : proxy.close());
        await backend.close();
      }
    });
  }
});

// ---- Upgrade (direct h1 only: a meshed upgrade goes over an 'http1' session the test's server proxy does not serve) ----

describe('h1 upgrade', () => {
  it('replays the head with its Connection and Upgrade fields, then bytes flow raw both ways', async () => {
    const backend = await h1Backend();
    const proxy = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
    try {
      const text = await rawExchange(proxy.port, 'GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello', (t) => t.endsWith('HELLO'));
      assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      assert.ok(text.endsWith('\r\n\r\nHELLO'));
    } finally {
      await proxy.close();
      await backend.close();
    }
  });
});

// ---- metrics through both stages, HTTP/1 ----

describe('h1 metrics through both stages', () => {
  it('counts requests and responses by status, classification, error and authority on each proxy', async () => {
    const backend = await h1Backend();
    const mesh = await startMesh('h1', addr(backend.port), pool);
    try {
      const authority = 'api.test:8080';
      for (const path of ['/status/200', '/status/200', '/status/200', '/status/503', '/die']) {
        await h1Request(mesh.client.port, false, { path, headers: { host: authority } });
      }
      for (const [node, direction] of [[mesh.client, 'outbound'], [mesh.server, 'inbound']] as const) {
        const text = await node.metrics.registry.metrics();
        const req = samples(text, 'request_total').filter((x) => x.labels.authority === authority);
        assert.deepEqual(req.map((x) => [x.labels.direction, x.value]), [[direction, 5]], `${direction} request_total`);
        const res = samples(text, 'response_total').filter((x) => x.labels.authority === authority);
        const by = (code: string, cls: string, error?: string): number | undefined =>
          res.find((x) => x.labels.status_code === code && x.labels.classification === cls && x.labels.error === error)?.value;
        assert.equal(by('200', 'success'), 3, `${direction} 200 success`);
        assert.equal(by('503', 'failure'), 1, `${direction} 503 failure`);
        // The backend died mid-body: a 200 that failed, with the upstream's error code.
        assert.equal(by('200', 'failure', 'MESH_UPSTREAM_RESET'), 1, `${direction} cut 200: ${JSON.stringify(res.map((x) => x.labels))}`);
        assert.equal(res.length, 3, `${direction}: no other response series`);
      }
    } finally {
      await mesh.close();
      await backend.close();
    }
  });

  it('counts a refused connect as a 502 failure with its error code', async () => {
    const proxy = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(await closedPort()), h1Pool: pool });
    try {
      assert.equal((await h1Request(proxy.port, false, { path: '/', headers: { host: 'gone.test' } })).status, 502);
      const res = samples(await proxy.metrics.registry.metrics(), 'response_total').filter((x) => x.labels.authority === 'gone.test');
      assert.deepEqual(res.map((x) => [x.labels.status_code, x.labels.classification, x.labels.error, x.value]), [['502', 'failure', 'MESH_CONNECT_REFUSED', 1]]);
    } finally {
      await proxy.close();
    }
  });
});

// ---- an upstream that answers before the request body is all sent ----

describe('answers before the request body', () => {
  /** A backend that answers each request head at once with `answer`, reading no body. */
  async function eager(answer: string): Promise<{ port: number; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          text = '';
          s.write(answer);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as net.AddressInfo).port,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  // Upstream answers that end the exchange while the client is still to send its body:
  // an upload answered early without a body (it crashed the process: the upstream request
  // was reset from inside the response parser), and Expect: 100-continue refused (counted
  // twice, once as a client reset).
  const cases = [
    ['an upload answered 204 before its body', 'POST', [], 'HTTP/1.1 204 No Content\r\n\r\n', 204, 'abc'],
    ['an upload answered 200 with Content-Length: 0 before its body', 'POST', [], 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 200, 'abc'],
    ['Expect: 100-continue refused with a bodyless 417', 'PUT', ['Expect: 100-continue'], 'HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n', 417, ''],
    ['Expect: 100-continue refused with a 417 and a body', 'PUT', ['Expect: 100-continue'], 'HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\n\r\nno', 417, ''],
  ] as const;
  for (const meshed of [false, true]) {
    for (const [name, method, extra, answer, status, partial] of cases) {
      it(`${name}: the client gets the answer, counted once as a response${meshed ? ' (via mesh)' : ''}`, async () => {
        const backend = await eager(answer);
        const mesh = meshed ? await startMesh('h1', addr(backend.port), pool) : undefined;
        const proxy = mesh ? mesh.client : await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
        try {
          const head = [`${method} /up HTTP/1.1`, 'Host: early.test', 'Content-Length: 100', ...extra].join('\r\n');
          const text = await rawExchange(proxy.port, `${head}\r\n\r\n${partial}`, (t) => new RegExp(`^HTTP/1\\.1 ${status} [^\\r]*\\r\\n[\\s\\S]*\\r\\n\\r\\n${answer.split('\r\n\r\n')[1]}$`).test(t));
          assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `));
          // Still serving, and the exchange counted once, as the response it was.
          assert.match(await rawExchange(proxy.port, 'GET /again HTTP/1.1\r\nHost: early.test\r\nConnection: close\r\n\r\n'), new RegExp(`^HTTP/1\\.1 ${status} `));
          for (const node of mesh ? [mesh.client, mesh.server] : [proxy]) {
            await eventually(() => node.contexts.length > 0);
            const res = samples(await node.metrics.registry.metrics(), 'response_total').filter((x) => x.labels.authority === 'early.test');
            assert.deepEqual(res.map((x) => [x.labels.status_code, x.labels.error, x.value]), [[String(status), undefined, 2]], JSON.stringify(res));
          }
        } finally {
          await (mesh ? mesh.close() : proxy.close());
          await backend.close();
        }
      });
    }
  }
});

// ---- request smuggling: a body the client framed must reach the backend framed, once ----

describe('request smuggling', () => {
  let backend: Awaited<ReturnType<typeof rawBackend>>;
  let direct: ProxyNode;
  let mesh: MeshPair;

  before(async () => {
    backend = await rawBackend();
    direct = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
    mesh = await startMesh('h1', addr(backend.port), pool);
  });
  after(async () => {
    await direct.close();
    await mesh.close();
    await backend.close();
  });

  // The body is itself a request: forwarded unframed, the backend would serve GET /admin too.
  const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
  const chunkedGet = `GET /s HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
  const lengthGet = `GET /s HTTP/1.1\r\nHost: api.test\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`;

  for (const meshed of [false, true]) {
    for (const [name, request, framing] of [['chunked', chunkedGet, /\r\ntransfer-encoding: chunked/i], ['Content-Length', lengthGet, new RegExp(`\\r\\ncontent-length: ${smuggled.length}`, 'i')]] as const) {
      it(`a GET with a ${name} body reaches the backend framed, once${meshed ? ' (via mesh)' : ''}`, async () => {
        const n = backend.requests.length;
        const text = await rawExchange((meshed ? mesh.client : direct).port, request, (t) => t.endsWith('ok'));
        assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
        // Wait for anything that might follow the first request (an unframed body arrives with it or just after).
        await eventually(() => backend.requests.length > n);
        const got = backend.requests.slice(n);
        assert.equal(got.length, 1, `the backend read ${got.map((r) => r.head.split('\r\n')[0]).join(' + ')}`);
        assert.match(got[0]!.head, /^GET \/s HTTP\/1\.1\r\n/);
        assert.match(got[0]!.head, framing);
        assert.equal(got[0]!.body, smuggled);
      });
    }
  }
});

// ---- a fresh meshed connection, and what the peer refuses ----

describe('fresh and refused connections', () => {
  it('sends a first request with a 5 MB body while its meshed connection is still being made (h1 and h2 clients)', async () => {
    const h1b = await h1Backend();
    const h2b = await h2Backend();
    const m1 = await startMesh('h1', addr(h1b.port), pool);
    const m2 = await startMesh('h2', addr(h2b.port), noPool);
    const session = h2Connect(m2.client.port);
    try {
      // No Content-Length: chunked from the client, queued in the pending connection, then replayed.
      const [up, echo] = await Promise.all([
        h1Request(m1.client.port, false, { method: 'POST', path: '/upload', body: BIG }),
        h2Request(session, { ':method': 'POST', ':path': '/echo' }, BIG),
      ]);
      assert.equal(up.body.toString(), `${BIG.length} ${BIG_SHA}`);
      assert.equal(echo.trailers?.['x-request-sha'], BIG_SHA);
      assert.equal(sha(echo.body), BIG_SHA);
    } finally {
      session.destroy();
      await m1.close();
      await m2.close();
      await h1b.close();
      await h2b.close();
    }
  });

  it('sends twenty concurrent first requests over one new meshed connection', async () => {
    const backend = await h2Backend();
    const mesh = await startMesh('h2', addr(backend.port), noPool);
    const session = h2Connect(mesh.client.port);
    try {
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, { ':path': `/status/${200 + (i % 3)}` })));
      assert.deepEqual(all.map((r) => r.headers[':status']), Array.from({ length: 20 }, (_, i) => 200 + (i % 3)));
      assert.equal(mesh.client.connector.meshedDials.length, 1, 'the requests waited for one connection rather than each dialling');
    } finally {
      session.destroy();
      await mesh.close();
      await backend.close();
    }
  });

  for (const meshed of [false, true]) {
    it(`answers an upload the backend refused early, and the client reads that answer${meshed ? ' (via mesh)' : ''}`, async () => {
      const backend = await h1Backend();
      const mesh = meshed ? await startMesh('h1', addr(backend.port), pool) : undefined;
      const proxy = mesh ? mesh.client : await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(backend.port), h1Pool: pool });
      try {
        const r = await h1Request(proxy.port, false, { method: 'POST', path: '/early', body: BIG, headers: { 'content-length': BIG.length } });
        assert.equal(r.status, 413);
        assert.equal(r.body.toString(), 'too big\n');
        assert.ok(r.complete);
        // The proxy still serves: the early answer cost no more than that exchange.
        assert.equal((await h1Request(proxy.port, false, { path: '/fine' })).status, 299);
      } finally {
        await (mesh ? mesh.close() : proxy.close());
        await backend.close();
      }
    });
  }

  it('sends the requests that waited for a meshed connection even when a drain began meanwhile', async () => {
    const backend = await h1Backend();
    const mesh = await startMesh('h1', addr(backend.port), pool);
    const c = mesh.client.connector;
    // Shutdown starts after the dial began and before it completed.
    const dial = c.dialMeshed.bind(c);
    c.dialMeshed = (...a) => {
      const p = dial(...a);
      c.drain();
      return p;
    };
    try {
      const r = await h1Request(mesh.client.port, false, { path: '/fine' });
      assert.equal(r.status, 299, `answered ${r.status} ${r.body.toString().trim()}`);
      assert.equal(c.meshedDials.length, 1);
    } finally {
      await mesh.close();
      await backend.close();
    }
  });

  // A stand-in for the server proxy: node:http2 refusing streams unprocessed (REFUSED_STREAM), as a peer going away does.
  async function refusingPeer(refusals: number): Promise<{ port: number; streams: number; close(): Promise<void> }> {
    const state = { streams: 0 };
    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      if (++state.streams <= refusals) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200, 'mesh-orig-headers': 'X-Served' , 'x-served': String(state.streams) });
      stream.end('served');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as net.AddressInfo).port,
      get streams() {
        return state.streams;
      },
      close: () => {
        for (const s of sessions) s.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    };
  }

  it('retries a bodyless request the peer refused unprocessed, once (h1 and h2 clients)', async () => {
    for (const protocol of ['h1', 'h2'] as const) {
      const peer = await refusingPeer(1);
      const proxy = await startProxy({ direction: 'outbound', protocol, target: addr(peer.port), peerIdentity: API_ID, h1Pool: noPool });
      try {
        if (protocol === 'h1') {
          const r = await h1Request(proxy.port, false, { path: '/' });
          assert.equal(r.status, 200, 'h1');
          assert.equal(r.body.toString(), 'served');
        } else {
          const session = h2Connect(proxy.port);
          const r = await h2Request(session, { ':path': '/' });
          session.destroy();
          assert.equal(r.headers[':status'], 200, 'h2');
        }
        assert.equal(peer.streams, 2, `${protocol}: refused once, served on the retry`);
      } finally {
        await proxy.close();
        await peer.close();
      }
    }
  });

  it('answers 502 MESH_H2_REFUSED when the retry is refused too, and never retries a request with a body', async () => {
    const peer = await refusingPeer(10);
    const proxy = await startProxy({ direction: 'outbound', protocol: 'h1', target: addr(peer.port), peerIdentity: API_ID, h1Pool: noPool });
    try {
      const r = await h1Request(proxy.port, false, { path: '/' });
      assert.equal(r.status, 502);
      assert.equal(pairs(r.rawHeaders).find(([n]) => n.toLowerCase() === 'mesh-proxy-error')?.[1], 'MESH_H2_REFUSED');
      assert.equal(peer.streams, 2, 'one retry only');
      const withBody = await h1Request(proxy.port, false, { method: 'POST', path: '/', body: Buffer.from('once') });
      assert.equal(withBody.status, 502);
      assert.equal(peer.streams, 3, 'a request with a body is not sent twice');
    } finally {
      await proxy.close();
      await peer.close();
    }
  });
});
