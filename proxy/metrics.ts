// Prometheus metrics with the names and labels Linkerd dashboards expect.
// Label children are looked up once per route or connection and cached, so a
// request costs a few increments, not a label hash per metric.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Direction } from './target.js';

/** How a connection was secured, as the `tls` label family says it. */
export interface TlsLabels {
  tls: 'true' | 'no_identity' | 'opaque';
  no_tls_reason?: string;
  sni?: string;
  client_id?: string;
  server_id?: string;
}

export interface ConnLabels extends TlsLabels {
  direction: Direction;
  target_addr: string;
}

const latencyBucketsMs = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000];
const connLabelNames = ['direction', 'target_addr', 'tls', 'no_tls_reason', 'sni', 'client_id', 'server_id'] as const;
const routeLabelNames = [...connLabelNames, 'authority'] as const;
/** Beyond this many distinct routes, new authorities are counted under one label value. */
const maxRoutes = 10_000;

type Labels = Record<string, string>;

function defined(labels: object): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}

export class RouteMetrics {
  readonly #requests: Counter.Internal;
  readonly #responses = new Map<string, Counter.Internal>();
  readonly #latency = new Map<number, Histogram.Internal<string>>();

  constructor(private readonly m: ProxyMetrics, private readonly labels: Labels) {
    this.#requests = m.requestTotal.labels(labels);
  }

  request(): void {
    this.#requests.inc();
  }

  /** Time to response headers. */
  responseHeaders(status: number, latencyMs: number): void {
    let h = this.#latency.get(status);
    if (!h) this.#latency.set(status, (h = this.m.responseLatency.labels({ ...this.labels, status_code: String(status) })));
    h.observe(latencyMs);
  }

  /** When the response stream ends; gRPC status (from trailers) decides success for gRPC. */
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

export class ConnMetrics {
  constructor(private readonly m: ProxyMetrics, readonly labels: Labels) {
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

/** The workload certificate: registered only when identity is on, so /metrics is unchanged without it. */
export interface IdentityMetrics {
  certExpiration: Gauge<string>;
  refreshSuccess: Counter.Internal;
  refreshFailure: Counter.Internal;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  #identity: IdentityMetrics | undefined;
  readonly requestTotal: Counter<string>;
  readonly responseTotal: Counter<string>;
  readonly responseLatency: Histogram<string>;
  readonly tcpOpenTotal: Counter<string>;
  readonly tcpOpenConnections: Gauge<string>;
  readonly tcpReadBytes: Counter<string>;
  readonly tcpWriteBytes: Counter<string>;
  readonly tcpCloseTotal: Counter<string>;
  readonly #routes = new Map<string, RouteMetrics>();

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

  identity(): IdentityMetrics {
    if (this.#identity) return this.#identity;
    const registers = [this.registry];
    const certExpiration = new Gauge({ name: 'identity_cert_expiration_timestamp_seconds', help: "Time when the proxy's workload certificate expires, in seconds since the epoch.", registers });
    const refresh = new Counter({ name: 'identity_cert_refresh_total', help: 'Total count of workload certificate requests, by result.', labelNames: ['result'], registers });
    this.#identity = { certExpiration, refreshSuccess: refresh.labels({ result: 'success' }), refreshFailure: refresh.labels({ result: 'failure' }) };
    return this.#identity;
  }

  connection(labels: ConnLabels): ConnMetrics {
    return new ConnMetrics(this, defined(labels));
  }

  route(conn: ConnMetrics, authority: string): RouteMetrics {
    const key = `${conn.labels.direction}\0${conn.labels.target_addr}\0${conn.labels.tls}\0${conn.labels.client_id ?? ''}\0${conn.labels.server_id ?? ''}\0${authority}`;
    let r = this.#routes.get(key);
    if (r) return r;
    const label = this.#routes.size < maxRoutes ? authority : 'overflow';
    r = new RouteMetrics(this, { ...conn.labels, authority: label });
    if (this.#routes.size < maxRoutes) this.#routes.set(key, r);
    return r;
  }
}
