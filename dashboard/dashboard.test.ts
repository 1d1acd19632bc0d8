// The dashboard without a mesh: proxies' /metrics made by the proxy's own
// metrics code, a fake clock and fake pods; the HTTP API asked over a real
// socket on 127.0.0.1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ProxyMetrics } from '../proxy/metrics.js';
import type { PodEntry } from '../contract/tap.js';
import { JsonStreamClient } from '../shared/api-stream.js';
import { Collector } from './collector.js';
import { readingOf, ReadingRing } from './readings.js';
import { startDashboard, type Dashboard } from './server.js';
import { edgesView, workloadsView } from './views.js';

const ID = (sa: string): string => `${sa}.default.serviceaccount.identity.mesh.cluster.local`;

/** A proxy's metrics, driven by the test: `serve(n, failures, from)` adds inbound responses. */
class FakeProxy {
  readonly m = new ProxyMetrics(false);
  serve(n: number, failures: number, clientId?: string): void {
    const conn = this.m.connection({ direction: 'inbound', target_addr: '198.18.0.3:8080', tls: clientId ? 'true' : 'no_identity', ...(clientId ? { client_id: clientId } : { no_tls_reason: 'disabled' }) });
    const route = this.m.route(conn, 'b:8080');
    for (let i = 0; i < n; i++) {
      const status = i < failures ? 500 : 200;
      route.request();
      route.responseHeaders(status, 3);
      route.responseEnd(status, undefined, undefined);
    }
  }
  call(n: number, target: string): void {
    const conn = this.m.connection({ direction: 'outbound', target_addr: target, tls: 'true', server_id: ID('b') });
    const route = this.m.route(conn, 'b:8080');
    for (let i = 0; i < n; i++) {
      route.request();
      route.responseHeaders(200, 3);
      route.responseEnd(200, undefined, undefined);
    }
  }
  text(): Promise<string> {
    return this.m.registry.metrics();
  }
}

const pods: PodEntry[] = [
  { pod: 'a-1', namespace: 'default', address: '198.18.0.2', identity: ID('a'), deployment: 'a' },
  { pod: 'b-1', namespace: 'default', address: '198.18.0.3', identity: ID('b'), deployment: 'b' },
  { pod: 'b-2', namespace: 'default', address: '198.18.0.4', identity: ID('b'), deployment: 'b' },
  { pod: 'plain-1', namespace: 'default', address: '198.18.0.9', deployment: 'plain' },
];

function fixture(): { proxies: Map<string, FakeProxy>; clock: { t: number }; collector: Collector } {
  const proxies = new Map(pods.filter((p) => p.identity).map((p) => [p.address, new FakeProxy()]));
  const clock = { t: 0 };
  const collector = new Collector(
    { pods: async () => pods, scrape: (addr) => proxies.get(addr)!.text(), now: () => clock.t },
    { windowMs: 10_000, idleMs: 60_000 },
  );
  return { proxies, clock, collector };
}

describe('dashboard readings', () => {
  it('keeps the newest reading at least a window old as the window\'s start', () => {
    const ring = new ReadingRing(10_000);
    for (let t = 0; t <= 30_000; t += 2000) ring.add({ at: t, samples: [] });
    const span = ring.span()!;
    assert.equal(span.last.at, 30_000);
    assert.equal(span.first.at, 20_000);
  });

  it('a long window costs a bounded number of readings', () => {
    const ring = new ReadingRing(600_000);
    for (let t = 0; t <= 600_000; t += 2000) ring.add({ at: t, samples: [] });
    assert.ok(ring.size <= ReadingRing.SLOTS + 2, `kept ${ring.size}`);
    assert.equal(ring.span()!.first.at, 0, 'the first reading stays until it falls out of the window');
  });

  it('drops the series stat does not use', async () => {
    const p = new FakeProxy();
    p.serve(1, 0);
    const r = readingOf(await p.text(), 0);
    assert.ok(r.samples.length > 0);
    assert.ok(r.samples.every((s) => ['response_total', 'response_latency_ms_bucket', 'tcp_open_connections'].includes(s.name)));
  });
});

describe('dashboard views', () => {
  it('a row per deployment over the window: exact counts, summed over its pods', async () => {
    const { proxies, clock, collector } = fixture();
    collector.namespace('default');
    proxies.get('198.18.0.3')!.serve(50, 50, ID('a')); // before the first reading: not counted
    await collector.round();
    let v = workloadsView('default', await collector.read('default'));
    assert.equal(v.windowSeconds, 0);
    assert.equal(v.rows.find((r) => r.name === 'b')!.rps, undefined, 'no rate from one reading');
    proxies.get('198.18.0.3')!.serve(30, 3, ID('a'));
    proxies.get('198.18.0.4')!.serve(10, 1);
    clock.t = 4000;
    await collector.round();
    v = workloadsView('default', await collector.read('default'));
    const b = v.rows.find((r) => r.name === 'b')!;
    assert.equal(b.meshed, '2/2');
    assert.equal(b.requests, 40);
    assert.equal(b.success, 0.9);
    assert.equal(b.rps, 10);
    assert.deepEqual(v.rows.map((r) => [r.name, r.meshed]), [['a', '1/1'], ['b', '2/2'], ['plain', '0/1']]);
    assert.equal(v.windowSeconds, 4);
  });

  it('edges: inbound by client identity (named by its deployment), outbound by destination', async () => {
    const { proxies, clock, collector } = fixture();
    collector.namespace('default');
    await collector.round();
    proxies.get('198.18.0.3')!.serve(8, 2, ID('a'));
    proxies.get('198.18.0.3')!.serve(5, 0, ID('stranger').replace('default', 'other'));
    proxies.get('198.18.0.4')!.serve(4, 0);
    proxies.get('198.18.0.2')!.call(6, '198.18.0.3:8080');
    clock.t = 2000;
    await collector.round();
    const s = await collector.read('default');
    const b = edgesView('default', 'b', s)!;
    assert.deepEqual(
      b.inbound.map((e) => [e.peer, e.requests, e.success]),
      [['(no identity)', 4, 1], ['a', 8, 0.75], ['stranger.other', 5, 1]],
    );
    const a = edgesView('default', 'a', s)!;
    assert.deepEqual(a.outbound.map((e) => [e.peer, e.address, e.requests]), [['b', '198.18.0.3', 6]]);
    assert.equal(edgesView('default', 'nope', s), undefined);
  });

  it('a proxy that cannot be read is named, the others are still counted', async () => {
    const { proxies, clock } = fixture();
    const collector = new Collector(
      { pods: async () => pods, scrape: async (addr) => (addr === '198.18.0.4' ? Promise.reject(new Error('connect ECONNREFUSED')) : proxies.get(addr)!.text()), now: () => clock.t },
      { windowMs: 10_000, idleMs: 60_000 },
    );
    const s = await collector.read('default');
    assert.deepEqual(s.problems, ['default/b-2: connect ECONNREFUSED']);
  });
});

describe('dashboard server', () => {
  let d: Dashboard;
  const get = (path: string, host = `127.0.0.1:${d.address.port}`): Promise<{ status: number; type: string; body: string }> =>
    new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port: d.address.port, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      }).on('error', reject).end();
    });

  before(async () => {
    const { proxies, clock } = fixture();
    d = await startDashboard(
      { host: '127.0.0.1', port: 0, namespace: 'default', windowMs: 10_000, scrapeIntervalMs: 60_000, tapMaxRps: 100 },
      {
        pods: async () => pods,
        scrape: (addr) => proxies.get(addr)!.text(),
        now: () => clock.t,
        // Never connected in these tests: no tap is asked for.
        tap: new JsonStreamClient({ url: 'https://127.0.0.1:1', trustAnchorPem: '', serverName: 'x' }),
      },
    );
  });
  after(() => d?.close());

  it('serves the page and its modules from dashboard/web, nothing else', async () => {
    const index = await get('/');
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(index.body, /<script type="module" src="\/app\.js">/);
    assert.doesNotMatch(index.body, /https?:\/\//, 'no asset from elsewhere');
    const app = await get('/app.js');
    assert.equal(app.status, 200);
    assert.match(app.type, /^text\/javascript/);
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/nope.js', '/server.js']) {
      const r = await get(path);
      assert.equal(r.status, 404, path);
      assert.equal(JSON.parse(r.body).code, 'MESH_DASHBOARD_NOT_FOUND');
    }
  });

  it('answers workloads and edges as JSON; an unknown workload is a coded 404', async () => {
    const w = await get('/api/workloads?namespace=default');
    assert.equal(w.status, 200);
    assert.deepEqual((JSON.parse(w.body) as { rows: Array<{ name: string }> }).rows.map((r) => r.name), ['a', 'b', 'plain']);
    const e = await get('/api/workloads/b/edges');
    assert.equal(e.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(e.body)).sort(), ['inbound', 'name', 'namespace', 'outbound', 'pods', 'windowSeconds']);
    const missing = await get('/api/workloads/zzz/edges');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).code, 'MESH_DASHBOARD_NOT_FOUND');
    const bad = await get('/api/workloads?namespace=Not_A_Name');
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).code, 'MESH_DASHBOARD_BAD_REQUEST');
    const noResource = await get('/api/tap');
    assert.equal(noResource.status, 400);
  });

  it('refuses a Host that is not this machine (DNS rebinding)', async () => {
    const r = await get('/api/workloads', 'evil.example:50750');
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).code, 'MESH_DASHBOARD_HOST');
    assert.equal((await get('/', `localhost:${d.address.port}`)).status, 200);
  });
});
