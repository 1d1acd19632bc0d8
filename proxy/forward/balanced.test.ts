// Balanced requests end to end in-process: a real node:http client, our
// outbound HTTP stage with discovery answers set by the test, node:http
// backends on loopback whose behaviour each case sets. What a service mesh
// must get right here: spread, retries only when safe and within budget,
// timeouts answered as 504 with the proxy's error header.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { RESILIENCE_DEFAULTS as R, type AuthoritySettings } from '../../contract/destination.js';
import { defaultEndpointStats, Endpoint } from '../balance/endpoint.js';
import type { Upstreams } from '../connect/upstreams.js';
import { Service } from '../discovery/service.js';
import { H1Pool } from '../h1/index.js';
import { resetAndDestroy } from '../transport/tls.js';
import type { DiscoveryLookup } from './http.js';
import { addr, closedPort, samples, startProxy, type PoolFactory, type ProxyNode } from './testkit.js';

const pool: PoolFactory = (dial) => new H1Pool({ dial, reset: resetAndDestroy });
const BUDGET = { ratio: R.retryBudgetRatio, minPerSecond: R.retryBudgetMinPerSecond, windowMs: R.retryBudgetWindowMs };
const STATS = defaultEndpointStats();

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, n: number) => void;

interface Backend {
  name: string;
  port: number;
  hits: number;
  bodies: number[];
  behaviour: Behaviour;
  close(): Promise<void>;
}

const ok: Behaviour = (_req, res) => res.end('ok');

async function backend(name: string): Promise<Backend> {
  const b: Backend = { name, port: 0, hits: 0, bodies: [], behaviour: ok, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      b.hits++;
      b.bodies.push(body.length);
      res.setHeader('x-backend', name);
      b.behaviour(req, res, body, b.hits);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  b.port = (server.address() as AddressInfo).port;
  b.close = () => {
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r()));
  };
  return b;
}

/** Discovery as the test says it: services by authority, answered (or not yet) by hand. */
class TestDiscovery implements DiscoveryLookup {
  readonly epoch = 0;
  readonly services = new Map<string, Service>();
  connector!: Upstreams;

  service(authority: string): Service {
    let s = this.services.get(authority);
    if (!s) this.services.set(authority, (s = new Service(authority, Math.random, BUDGET, performance.now())));
    return s;
  }

  answer(authority: string, ports: number[], settings: Partial<AuthoritySettings> = {}): Service {
    const s = this.service(authority);
    s.snapshot({ opaque: false, ...settings }, ports.map((port) => ({ address: '127.0.0.1', port })), (e) => new Endpoint(addr(e.port), `127.0.0.1:${e.port}`, undefined, this.connector, STATS, performance.now()));
    return s;
  }
}

interface Result {
  status: number;
  backend: string;
  error: string;
  body: string;
}

function get(port: number, host: string, o: { method?: string; body?: Buffer; path?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', method: o.method ?? 'GET', path: o.path ?? '/', headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, backend: String(res.headers['x-backend'] ?? ''), error: String(res.headers['mesh-proxy-error'] ?? ''), body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('balanced requests (discovery on, outbound HTTP/1)', () => {
  let backends: Backend[];
  let origin: Backend;
  let proxy: ProxyNode;
  let disco: TestDiscovery;

  before(async () => {
    backends = [await backend('b0'), await backend('b1'), await backend('b2')];
    origin = await backend('origin');
    disco = new TestDiscovery();
    proxy = await startProxy({
      direction: 'outbound',
      protocol: 'h1',
      target: addr(origin.port),
      h1Pool: pool,
      discovery: (c) => {
        disco.connector = c;
        return disco;
      },
    });
  });
  after(async () => {
    await proxy.close();
    for (const b of [...backends, origin]) await b.close();
  });
  beforeEach(() => {
    for (const b of [...backends, origin]) {
      b.hits = 0;
      b.bodies = [];
      b.behaviour = ok;
    }
  });

  const metric = async (name: string) => samples(await proxy.metrics.registry.metrics(), name);

  it('spreads requests over every endpoint of the service', async () => {
    disco.answer('spread:80', backends.map((b) => b.port));
    const seen = new Map<string, number>();
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 40; i++) {
        const r = await get(proxy.port, 'spread:80');
        assert.equal(r.status, 200);
        seen.set(r.backend, (seen.get(r.backend) ?? 0) + 1);
      }
    }));
    console.log('spread over three equal endpoints:', Object.fromEntries(seen));
    for (const b of backends) assert.ok((seen.get(b.name) ?? 0) > 30, `${b.name} got ${seen.get(b.name)}`);
    assert.equal(origin.hits, 0);
  });

  it('an authority discovery does not know goes to the original destination', async () => {
    disco.service('unknown.example:80').notFound();
    const r = await get(proxy.port, 'unknown.example:80');
    assert.equal(r.backend, 'origin');
  });

  it('a request for an authority not answered yet waits for the answer, its body with it', async () => {
    const s = disco.service('later:80');
    const pending = get(proxy.port, 'later:80', { method: 'POST', body: Buffer.alloc(100_000, 1) });
    await new Promise((r) => setTimeout(r, 30)); // the answer comes later than the request: that is the case under test
    assert.equal(backends[1]!.hits, 0);
    disco.answer('later:80', [backends[1]!.port]);
    assert.equal(s.usable, true);
    const r = await pending;
    assert.equal(r.backend, 'b1');
    assert.deepEqual(backends[1]!.bodies, [100_000]);
  });

  it('retries a 503 when retry-http says 5xx: the client sees only successes', async () => {
    disco.answer('flaky:80', [backends[0]!.port], { retryHttp: '5xx' });
    backends[0]!.behaviour = (_q, res, _b, n) => {
      res.statusCode = n % 2 === 1 ? 503 : 200;
      res.end();
    };
    for (let i = 0; i < 20; i++) assert.equal((await get(proxy.port, 'flaky:80')).status, 200);
    assert.equal(backends[0]!.hits, 40);
    const retries = (await metric('request_total')).filter((s) => s.labels.authority === 'flaky:80' && s.labels.retry === 'true');
    assert.equal(retries[0]?.value, 20);
  });

  it('retries a small POST with its body intact, never one beyond the 64 KiB retry buffer', async () => {
    disco.answer('post:80', [backends[0]!.port], { retryHttp: [503] });
    backends[0]!.behaviour = (_q, res, _b, n) => {
      res.statusCode = n === 1 ? 503 : 200;
      res.end();
    };
    assert.equal((await get(proxy.port, 'post:80', { method: 'POST', body: Buffer.alloc(60_000, 2) })).status, 200);
    assert.deepEqual(backends[0]!.bodies, [60_000, 60_000]);
    backends[0]!.hits = 0;
    backends[0]!.bodies = [];
    const r = await get(proxy.port, 'post:80', { method: 'POST', body: Buffer.alloc(1 << 20, 3) });
    assert.equal(r.status, 503, 'a 1 MB body is not retried');
    assert.deepEqual(backends[0]!.bodies, [1 << 20]);
    const skipped = (await metric('retry_skipped_total')).find((s) => s.labels.authority === 'post:80' && s.labels.reason === 'body');
    assert.equal(skipped?.value, 1);
  });

  it('a service failing everything gets at most the budget in retries (10/s floor × 10 s + 20%)', async () => {
    disco.answer('down:80', [backends[2]!.port], { retryHttp: '5xx', retryLimit: 3 });
    backends[2]!.behaviour = (_q, res) => {
      res.statusCode = 500;
      res.end();
    };
    const n = 200;
    for (let i = 0; i < n; i++) assert.equal((await get(proxy.port, 'down:80')).status, 500);
    const retries = backends[2]!.hits - n;
    console.log(`all-failing service: ${n} requests, ${retries} retries`);
    assert.ok(retries <= R.retryBudgetMinPerSecond * (R.retryBudgetWindowMs / 1000) + R.retryBudgetRatio * n, `${retries} retries`);
    assert.ok(retries >= 100, 'the floor is spent');
    const skipped = (await metric('retry_skipped_total')).find((s) => s.labels.authority === 'down:80' && s.labels.reason === 'budget');
    assert.ok((skipped?.value ?? 0) > 0);
  });

  it('answers 504 with the proxy error header when the authority timeout passes first', async () => {
    disco.answer('slow:80', [backends[1]!.port], { timeoutMs: 100 });
    backends[1]!.behaviour = (_q, res) => void setTimeout(() => res.end('late'), 1000);
    const t0 = performance.now();
    const r = await get(proxy.port, 'slow:80');
    const took = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.equal(r.error, 'MESH_REQUEST_TIMEOUT');
    assert.ok(took >= 95 && took < 900, `answered after ${took} ms`);
  });

  it('a 503 retried after discovery emptied the service goes to the original destination (it threw and killed the process)', async () => {
    disco.answer('scaled:80', [backends[0]!.port], { retryHttp: '5xx' });
    // The pod answers 503 while its service is scaled to zero (an empty answer, as during a rollout).
    backends[0]!.behaviour = (_q, res) => {
      disco.answer('scaled:80', [], { retryHttp: '5xx' });
      res.statusCode = 503;
      res.end();
    };
    const r = await get(proxy.port, 'scaled:80');
    assert.equal(r.status, 200);
    assert.equal(r.backend, 'origin');
    assert.equal(backends[0]!.hits, 1);
  });

  it('an authority timeout longer than a timer can hold (720h) is no timeout, not an instant 504', async () => {
    disco.answer('patient:80', [backends[1]!.port], { timeoutMs: 720 * 3600_000 });
    backends[1]!.behaviour = (_q, res) => void setTimeout(() => res.end('late'), 50);
    const r = await get(proxy.port, 'patient:80');
    assert.equal(r.status, 200, r.error);
    assert.equal(r.body, 'late');
  });

  it('a grpc-status from a response is a label only as a gRPC code (0-16): anything else is one value', async () => {
    disco.answer('odd:80', [backends[2]!.port]);
    let i = 0;
    backends[2]!.behaviour = (_q, res) => {
      res.statusCode = 204;
      res.setHeader('grpc-status', ['x1', '17', '3', '99999'][i++ % 4]!);
      res.end();
    };
    for (let k = 0; k < 8; k++) assert.equal((await get(proxy.port, 'odd:80')).status, 204);
    const codes = (await metric('response_total')).filter((x) => x.labels.authority === 'odd:80').map((x) => [x.labels.grpc_status, x.value]);
    assert.deepEqual(codes.sort(), [['3', 2], ['invalid', 6]]);
  });

  it('an endpoint that refuses connections costs no request: they go to another endpoint', async () => {
    const dead = await closedPort();
    const s = disco.answer('half:80', [dead, backends[0]!.port]);
    for (let i = 0; i < 30; i++) {
      const r = await get(proxy.port, 'half:80', { method: 'POST', body: Buffer.from('x') });
      assert.equal(r.status, 200, `${r.error} ${r.body}`);
    }
    const deadEp = s.balancer.endpoints.find((e) => e.target.port === dead)!;
    assert.equal(deadEp.accrual!.state === 'failed' || deadEp.accrual!.state === 'probing', true, 'taken out by failure accrual');
    assert.equal(backends[0]!.hits, 30);
  });
});

describe('balanced gRPC (h2 from the app)', () => {
  it('retries a trailers-only grpc-status the authority names (retry-grpc), and nothing of it reaches the client', async () => {
    const http2 = await import('node:http2');
    let n = 0;
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.resume();
      stream.on('end', () => {
        n++;
        // First attempt: UNAVAILABLE as a trailers-only response; the retry succeeds with a body and trailers.
        if (n === 1) return stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'try again' }, { endStream: true });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const disco = new TestDiscovery();
    const proxy = await startProxy({
      direction: 'outbound',
      protocol: 'h2',
      target: addr(port),
      h1Pool: () => {
        throw new Error('no HTTP/1 here');
      },
      discovery: (c) => {
        disco.connector = c;
        return disco;
      },
    });
    disco.answer('grpc:80', [port], { retryGrpc: ['unavailable'] });
    const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/svc/Method', ':authority': 'grpc:80', 'content-type': 'application/grpc', te: 'trailers' });
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      req.on('response', (h) => (headers = h));
      req.on('trailers', (t) => (trailers = t));
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      req.resume();
      await once(req, 'end');
      assert.equal(headers['grpc-status'], undefined, 'the trailers-only failure was not relayed');
      assert.equal(trailers['grpc-status'], '0');
      assert.equal(n, 2);
    } finally {
      session.destroy();
      await proxy.close();
      server.close();
    }
  });
});
