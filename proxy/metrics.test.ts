// The plain-number metrics against the implementation they replaced: the same
// calls must print the same /metrics, byte for byte. The old prom-client-children
// version is kept below, verbatim but for names, as the oracle.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ProxyMetrics, type ConnLabels } from './metrics.js';
import type { Direction } from './target.js';

// ---- oracle: proxy/metrics.ts as of 8bf5ca6 ---------------------------------
const latencyBucketsMs = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000];
const connLabelNames = ['direction', 'target_addr', 'tls', 'no_tls_reason', 'sni', 'client_id', 'server_id'] as const;
const routeLabelNames = [...connLabelNames, 'authority'] as const;
const maxRoutes = 10_000;
type Labels = Record<string, string>;

function defined(labels: object): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}

class OldRouteMetrics {
  readonly #requests: Counter.Internal;
  readonly #responses = new Map<string, Counter.Internal>();
  readonly #latency = new Map<number, Histogram.Internal<string>>();

  constructor(private readonly m: OldProxyMetrics, private readonly labels: Labels) {
    this.#requests = m.requestTotal.labels(labels);
  }

  request(): void {
    this.#requests.inc();
  }

  responseHeaders(status: number, latencyMs: number): void {
    let h = this.#latency.get(status);
    if (!h) this.#latency.set(status, (h = this.m.responseLatency.labels({ ...this.labels, status_code: String(status) })));
    h.observe(latencyMs);
  }

  responseEnd(status: number, grpcStatus: string | undefined, error: string | undefined): void {
    const failed = error !== undefined || status >= 500 || (grpcStatus !== undefined && grpcStatus !== '0');
    const key = `${status}|${grpcStatus ?? ''}|${error ?? ''}|${failed ? 1 : 0}`;
    let c = this.#responses.get(key);
    if (!c) {
      const labels: Labels = { ...this.labels, status_code: String(status), classification: failed ? 'failure' : 'success' };
      if (grpcStatus !== undefined) labels.grpc_status = grpcStatus;
      if (error !== undefined) labels.error = error;
      this.#responses.set(key, (c = this.m.responseTotal.labels(labels)));
    }
    c.inc();
  }
}

class OldConnMetrics {
  constructor(private readonly m: OldProxyMetrics, readonly labels: Labels) {
    m.tcpOpenTotal.labels(labels).inc();
    m.tcpOpenConnections.labels(labels).inc();
  }

  close(bytesRead: number, bytesWritten: number, error: string | undefined): void {
    this.m.tcpOpenConnections.labels(this.labels).dec();
    this.m.tcpReadBytes.labels(this.labels).inc(bytesRead);
    this.m.tcpWriteBytes.labels(this.labels).inc(bytesWritten);
    this.m.tcpCloseTotal.labels(error === undefined ? this.labels : { ...this.labels, error }).inc();
  }
}

class OldProxyMetrics {
  readonly registry = new Registry();
  readonly requestTotal: Counter<string>;
  readonly responseTotal: Counter<string>;
  readonly responseLatency: Histogram<string>;
  readonly tcpOpenTotal: Counter<string>;
  readonly tcpOpenConnections: Gauge<string>;
  readonly tcpReadBytes: Counter<string>;
  readonly tcpWriteBytes: Counter<string>;
  readonly tcpCloseTotal: Counter<string>;
  readonly #routes = new Map<string, OldRouteMetrics>();

  constructor(withProcessMetrics = true) {
    const registers = [this.registry];
    const routeLabels = [...routeLabelNames];
    this.requestTotal = new Counter({ name: 'request_total', help: 'Total count of HTTP requests.', labelNames: routeLabels, registers });
    this.responseTotal = new Counter({
      name: 'response_total',
      help: 'Total count of HTTP responses.',
      labelNames: [...routeLabels, 'status_code', 'classification', 'grpc_status', 'error'],
      registers,
    });
    this.responseLatency = new Histogram({
      name: 'response_latency_ms',
      help: 'Elapsed times between a request and its response headers, in milliseconds.',
      labelNames: [...routeLabels, 'status_code'],
      buckets: latencyBucketsMs,
      registers,
    });
    const conn = [...connLabelNames];
    this.tcpOpenTotal = new Counter({ name: 'tcp_open_total', help: 'Total count of opened connections.', labelNames: conn, registers });
    this.tcpOpenConnections = new Gauge({ name: 'tcp_open_connections', help: 'Number of currently open connections.', labelNames: conn, registers });
    this.tcpReadBytes = new Counter({ name: 'tcp_read_bytes_total', help: 'Total count of bytes read from peers.', labelNames: conn, registers });
    this.tcpWriteBytes = new Counter({ name: 'tcp_write_bytes_total', help: 'Total count of bytes written to peers.', labelNames: conn, registers });
    this.tcpCloseTotal = new Counter({ name: 'tcp_close_total', help: 'Total count of closed connections.', labelNames: [...conn, 'error'], registers });
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }

  identity() {
    const registers = [this.registry];
    const certExpiration = new Gauge({ name: 'identity_cert_expiration_timestamp_seconds', help: "Time when the proxy's workload certificate expires, in seconds since the epoch.", registers });
    const refresh = new Counter({ name: 'identity_cert_refresh_total', help: 'Total count of workload certificate requests, by result.', labelNames: ['result'], registers });
    return { certExpiration, refreshSuccess: refresh.labels({ result: 'success' }), refreshFailure: refresh.labels({ result: 'failure' }) };
  }

  connection(labels: ConnLabels): OldConnMetrics {
    return new OldConnMetrics(this, defined(labels));
  }

  route(conn: OldConnMetrics, authority: string): OldRouteMetrics {
    const key = `${conn.labels.direction}\0${conn.labels.target_addr}\0${conn.labels.tls}\0${conn.labels.client_id ?? ''}\0${conn.labels.server_id ?? ''}\0${authority}`;
    let r = this.#routes.get(key);
    if (r) return r;
    const label = this.#routes.size < maxRoutes ? authority : 'overflow';
    r = new OldRouteMetrics(this, { ...conn.labels, authority: label });
    if (this.#routes.size < maxRoutes) this.#routes.set(key, r);
    return r;
  }
}
// ---- end of oracle -------------------------------------------------------------

/** What both implementations offer callers. */
interface Route {
  request(): void;
  responseHeaders(status: number, latencyMs: number): void;
  responseEnd(status: number, grpcStatus: string | undefined, error: string | undefined): void;
}
interface Conn {
  readonly labels: Labels;
  close(bytesRead: number, bytesWritten: number, error: string | undefined): void;
}
interface Api<C extends Conn> {
  readonly registry: Registry;
  connection(labels: ConnLabels): C;
  route(conn: C, authority: string): Route;
  identity(): { certExpiration: { set(v: number): void }; refreshSuccess: { inc(): void }; refreshFailure: { inc(): void } };
}

/** A day in a proxy's life, touching every series in an order that is not creation order. */
function script<C extends Conn>(m: Api<C>): void {
  const inPlain = m.connection({ direction: 'inbound', target_addr: '10.0.0.7:8080', tls: 'no_identity', no_tls_reason: 'disabled' });
  // Same label set, keys in another order: one series, printed with the first connection's key order.
  const inPlain2 = m.connection({ no_tls_reason: 'disabled', tls: 'no_identity', target_addr: '10.0.0.7:8080', direction: 'inbound' } as ConnLabels);
  const outTls = m.connection({ direction: 'outbound', target_addr: '[fd00::7]:80', tls: 'true', server_id: 'web.default.serviceaccount.identity.mesh.local', sni: 'web' });
  const opaque = m.connection({ direction: 'outbound', target_addr: '10.0.0.9:5432', tls: 'opaque', client_id: '' });

  const api = m.route(inPlain, 'api:8080');
  const web = m.route(outTls, 'web.default.svc:80');
  const odd = m.route(inPlain2, 'we"ird\\host\nname');
  const grpc = m.route(outTls, 'grpc.default.svc:50051');

  // web answers before api is first asked: series order follows first use, not route creation.
  web.request();
  web.responseHeaders(200, 0.4);
  api.request();
  for (const ms of [0, 1, 1.0000001, 2, 5, 7.5, 10, 49.999, 50, 100, 999, 1000, 50000, 50000.5, 123456]) {
    api.request();
    api.responseHeaders(ms > 1000 ? 503 : 200, ms);
    api.responseEnd(ms > 1000 ? 503 : 200, undefined, undefined);
  }
  web.responseEnd(200, undefined, undefined);
  web.request();
  web.responseEnd(502, undefined, 'MESH_CONNECT_REFUSED');
  web.request();
  web.responseEnd(200, undefined, 'MESH_UPSTREAM_RESET');
  odd.responseHeaders(404, 3);
  odd.responseEnd(404, undefined, undefined);
  for (const g of ['0', '0', '14', '5', '0']) {
    grpc.request();
    grpc.responseHeaders(200, 12.25);
    grpc.responseEnd(200, g, undefined);
  }
  grpc.responseEnd(200, '2', 'MESH_UPSTREAM_RESET');
  // The cached route is found again through a different connection with the same key.
  m.route(inPlain2, 'api:8080').request();

  const id = m.identity();
  id.certExpiration.set(1_900_000_000);
  id.refreshSuccess.inc();
  id.refreshFailure.inc();
  id.refreshSuccess.inc();

  opaque.close(10, 20, undefined);
  inPlain2.close(300, 4000, 'MESH_UPSTREAM_RESET');
  inPlain.close(5, 6, undefined);
  const again = m.connection({ direction: 'outbound', target_addr: '10.0.0.9:5432', tls: 'opaque', client_id: '' });
  again.close(1, 2, undefined);
  outTls.close(0, 0, 'MESH_TLS_HANDSHAKE');
  m.connection({ direction: 'inbound', target_addr: '10.0.0.7:8080', tls: 'no_identity', no_tls_reason: 'disabled' }); // still open
}

/** Families added since the oracle: descriptor refusals, protocol errors, protocol detection (issue 12). */
const NEW_FAMILIES = 'tcp_accept_refused_total|http_protocol_errors_total|protocol_detect_duration_seconds|protocol_detect_total|protocol_detect_early_upstream_total|server_first_learned_total';

/** The new metric blocks (absent from the oracle), cut out of the text and returned. */
function withoutNewMetrics(text: string): { rest: string; added: string[] } {
  // The Registry joins families with a blank line and ends with one newline.
  const blocks = text.slice(0, -1).split('\n\n');
  const isNew = (b: string) => new RegExp(`^# HELP (${NEW_FAMILIES}) `).test(b);
  return { rest: `${blocks.filter((b) => !isNew(b)).join('\n\n')}\n`, added: blocks.filter(isNew) };
}

describe('proxy metrics', () => {
  it('print what the prom-client-children version printed for the same calls', async () => {
    const old = new OldProxyMetrics(false);
    const now = new ProxyMetrics(false);
    script(old);
    script(now);
    const want = await old.registry.metrics();
    const { rest, added } = withoutNewMetrics(await now.registry.metrics());
    assert.equal(rest, want);
    assert.deepEqual(added, [
      '# HELP tcp_accept_refused_total Total count of connections refused at accept, by reason (descriptors running out).\n# TYPE tcp_accept_refused_total counter',
      '# HELP http_protocol_errors_total Total count of HTTP protocol errors from clients, by error code.\n# TYPE http_protocol_errors_total counter',
      '# HELP protocol_detect_duration_seconds Time from accept to a protocol decision, by direction and outcome.\n# TYPE protocol_detect_duration_seconds histogram',
      '# HELP protocol_detect_total Total count of protocol decisions on accepted connections (and on mTLS sessions whose protocol the client proxy did not know), by outcome.\n# TYPE protocol_detect_total counter',
      '# HELP protocol_detect_early_upstream_total Total count of upstream connections opened for a client still silent after the server-speaks-first window, by what became of them.\n# TYPE protocol_detect_early_upstream_total counter',
      '# HELP server_first_learned_total Total count of destinations newly learned as server-speaks-first (their next connections skip the window).\n# TYPE server_first_learned_total counter',
    ]);
    assert.match(want, /le="50000",direction="inbound".*authority="api:8080",status_code="200"\} 12/);
  });

  it('retry_skipped_total: one series per label set, however often a caller asks for it (an authority dropped as idle and used again)', async () => {
    const m = new ProxyMetrics(false);
    m.retrySkipped('outbound', 'svc:80', 'limit').value++;
    m.retrySkipped('outbound', 'svc:80', 'limit').value++;
    m.retrySkipped('outbound', 'svc:80', 'budget').value++;
    const lines = (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('retry_skipped_total{'));
    assert.deepEqual(lines, ['retry_skipped_total{direction="outbound",authority="svc:80",reason="limit"} 2', 'retry_skipped_total{direction="outbound",authority="svc:80",reason="budget"} 1']);
  });

  it('write, in pieces, the text prom-client itself formats for the same series', async () => {
    // Without the process series (their values move between two readings); the identity ones,
    // registered as prom-client metrics, are formatted by prom-client in the same text.
    const m = new ProxyMetrics(false);
    script(m);
    m.acceptRefused('inbound', 'descriptors');
    m.protocolError('outbound', 'MESH_HTTP1_BAD_HEAD');
    m.detected('inbound', 'http1', 0.0004);
    m.detected('inbound', 'http1', 12);
    m.retrySkipped('outbound', 'web.default.svc:80', 'budget').value++;
    // Enough routes that the text is several pieces, and one label value to escape in each.
    const conn = m.connection({ direction: 'outbound', target_addr: '10.1.0.1:80', tls: 'true', server_id: 'a\\b"c' });
    for (let i = 0; i < 500; i++) {
      const r = m.route(conn, `svc-${i}.ns.svc.cluster.local:80`);
      r.request();
      r.responseHeaders(200, i);
      r.responseEnd(200, undefined, undefined);
    }
    const oracle = await Registry.prototype.metrics.call(m.registry);
    const pieces = await m.registry.pieces();
    assert.ok(pieces.length > 3, `${pieces.length} pieces`);
    assert.ok(pieces.every((p) => p.length < 70_000), 'each piece about 64 KB');
    assert.equal(Buffer.concat(pieces).toString(), oracle);
    assert.equal(await m.registry.metrics(), oracle);
    // Twice: label text made once and kept must give the same answer the second time.
    assert.equal(Buffer.concat(await m.registry.pieces()).toString(), oracle);
    assert.match(oracle, /^identity_cert_refresh_total\{result="success"\} 2$/m);
  });

  it('leave default labels to prom-client', async () => {
    const m = new ProxyMetrics(false);
    script(m);
    m.registry.setDefaultLabels({ pod: 'web-1' });
    const text = await m.registry.metrics();
    assert.equal(text, await Registry.prototype.metrics.call(m.registry));
    assert.match(text, /^request_total\{.*pod="web-1"\} \d+$/m);
  });

  it('keep the same metric families, in the same order, with process metrics on', async () => {
    const families = async (r: Registry) => (await r.metrics()).split('\n').filter((l) => l.startsWith('# '));
    const want = await families(new OldProxyMetrics(true).registry);
    const got = await families(new ProxyMetrics(true).registry);
    assert.deepEqual(got.filter((l) => !new RegExp(NEW_FAMILIES).test(l)), want);
  });

  it('put a value exactly on a bound in that bucket (le is inclusive)', async () => {
    const m = new ProxyMetrics(false);
    const r = m.route(m.connection({ direction: 'inbound', target_addr: 'a:1', tls: 'no_identity' }), 'x');
    for (const ms of [1, 5, 5.000001, 50000]) r.responseHeaders(200, ms);
    r.responseHeaders(200, Number.NaN); // ignored: a broken clock must not poison the sum
    const buckets = new Map<string, number>();
    for (const [, le, v] of (await m.registry.metrics()).matchAll(/response_latency_ms_bucket\{le="([^"]+)"[^}]*\} (\S+)/g)) buckets.set(le!, Number(v));
    assert.equal(buckets.get('1'), 1);
    assert.equal(buckets.get('4'), 1);
    assert.equal(buckets.get('5'), 2);
    assert.equal(buckets.get('10'), 3);
    assert.equal(buckets.get('40000'), 3);
    assert.equal(buckets.get('50000'), 4);
    assert.equal(buckets.get('+Inf'), 4);
    assert.match(await m.registry.metrics(), /response_latency_ms_sum\{[^}]*\} 50011\.000001\n/);
  });

  it('count routes past the limit under authority="overflow", against the oracle', async () => {
    const old = new OldProxyMetrics(false);
    const now = new ProxyMetrics(false);
    for (const m of [old, now] as Api<Conn>[]) {
      const conn = m.connection({ direction: 'outbound', target_addr: '10.1.0.1:80', tls: 'no_identity' });
      for (let i = 0; i < 10_003; i++) m.route(conn, `host-${i}`).request();
      m.route(conn, 'host-10002').responseEnd(200, undefined, undefined);
      m.route(conn, 'host-0').request();
    }
    const text = await now.registry.metrics();
    assert.equal(withoutNewMetrics(text).rest, await old.registry.metrics());
    assert.match(text, /request_total\{[^}]*authority="overflow"\} 3\n/);
    assert.match(text, /request_total\{[^}]*authority="host-9999"\} 1\n/);
    assert.match(text, /request_total\{[^}]*authority="host-0"\} 2\n/);
    assert.doesNotMatch(text, /host-10000/);
  });

  it('classify gRPC by grpc-status, HTTP by status, and any error as failure', async () => {
    const m = new ProxyMetrics(false);
    const r = m.route(m.connection({ direction: 'outbound', target_addr: 'g:1', tls: 'true' }), 'g');
    r.responseEnd(200, '0', undefined);
    r.responseEnd(200, '14', undefined);
    r.responseEnd(500, undefined, undefined);
    r.responseEnd(404, undefined, undefined);
    r.responseEnd(200, undefined, 'MESH_UPSTREAM_RESET');
    const rows = [...(await m.registry.metrics()).matchAll(/^response_total\{.*status_code="(\d+)",classification="(\w+)"(?:,grpc_status="(\d+)")?(?:,error="(\w+)")?\} 1$/gm)];
    assert.deepEqual(rows.map(([, s, c, g, e]) => [s, c, g, e]), [
      ['200', 'success', '0', undefined],
      ['200', 'failure', '14', undefined],
      ['500', 'failure', undefined, undefined],
      ['404', 'success', undefined, undefined],
      ['200', 'failure', undefined, 'MESH_UPSTREAM_RESET'],
    ]);
  });

  it('count refused accepts and client protocol errors by label set', async () => {
    const m = new ProxyMetrics(false);
    m.acceptRefused('inbound', 'fd_reserve');
    m.acceptRefused('inbound', 'fd_reserve');
    m.acceptRefused('outbound', 'EMFILE');
    m.protocolError('inbound' as Direction, 'MESH_CLIENT_PROTOCOL');
    const text = await m.registry.metrics();
    assert.match(text, /^tcp_accept_refused_total\{direction="inbound",reason="fd_reserve"\} 2$/m);
    assert.match(text, /^tcp_accept_refused_total\{direction="outbound",reason="EMFILE"\} 1$/m);
    assert.match(text, /^http_protocol_errors_total\{direction="inbound",code="MESH_CLIENT_PROTOCOL"\} 1$/m);
  });

  it('keep one series, not one object, per closed connection label set', async () => {
    const m = new ProxyMetrics(false);
    for (let i = 0; i < 1000; i++) m.connection({ direction: 'inbound', target_addr: 'a:1', tls: 'no_identity' }).close(1, 2, i % 2 ? 'MESH_UPSTREAM_RESET' : undefined);
    const text = await m.registry.metrics();
    assert.match(text, /^tcp_open_total\{[^}]*\} 1000$/m);
    assert.match(text, /^tcp_open_connections\{[^}]*\} 0$/m);
    assert.match(text, /^tcp_read_bytes_total\{[^}]*\} 1000$/m);
    assert.equal(text.match(/^tcp_close_total/gm)?.length, 2);
  });

  it('make a request cheaper than prom-client children did (microbenchmark)', (t) => {
    const opsPerSec = (m: Api<Conn>): number => {
      const r = m.route(m.connection({ direction: 'inbound', target_addr: '10.0.0.7:8080', tls: 'no_identity' }), 'api:8080');
      const run = (n: number): number => {
        const start = process.hrtime.bigint();
        for (let i = 0; i < n; i++) {
          r.request();
          r.responseHeaders(200, (i % 97) * 0.7);
          r.responseEnd(200, undefined, undefined);
        }
        return n / (Number(process.hrtime.bigint() - start) / 1e9);
      };
      run(50_000); // warm up the JIT
      return Math.max(run(300_000), run(300_000));
    };
    const before = opsPerSec(new OldProxyMetrics(false));
    const after = opsPerSec(new ProxyMetrics(false));
    const line = `request()+responseHeaders()+responseEnd(): old ${Math.round(before).toLocaleString('en')} ops/s, new ${Math.round(after).toLocaleString('en')} ops/s (${(after / before).toFixed(1)}x)`;
    t.diagnostic(line);
    console.log(line);
    assert.ok(after > before, line);
  });
});
