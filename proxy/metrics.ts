// Prometheus metrics with the names and labels Linkerd dashboards expect.
// A route or connection finds its series once; after that a request costs a
// few plain number updates. prom-client only reads those numbers at scrape
// time (metrics-exposition.ts), so /metrics reads as it did when every
// increment went through prom-client's label children.
import type { Counter as PromCounter } from 'prom-client';
import { Counter, Gauge, registerProcessMetrics } from './prom.js';
import { Buckets, ExpositionRegistry, exposeCounter, exposeGauge, exposeHistogram, type Labels, type Sample } from './metrics-exposition.js';
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

/** How detection ended (protocol_detect_total's `outcome`). */
export type DetectOutcome = 'http1' | 'h2' | 'tls' | 'opaque' | 'opaque-by-port' | 'server-first' | 'timeout' | 'closed' | 'upstream-failed';
/** What became of an upstream opened while detecting (server-speaks-first window). */
export type EarlyUpstreamResult = 'used' | 'closed' | 'failed' | 'skipped';

/** Detection time: sub-millisecond for clients that speak at once, the window for server-first, up to the detect timeout. */
const detectBucketsSeconds = Float64Array.from([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
const latencyBucketsMs = Float64Array.from([1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000]);
const connLabelNames = ['direction', 'target_addr', 'tls', 'no_tls_reason', 'sni', 'client_id', 'server_id'] as const;
const routeLabelNames = [...connLabelNames, 'authority'] as const;
/** Beyond this many distinct routes, new authorities are counted under one label value. */
const maxRoutes = 10_000;

function defined(labels: object): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}

/** A series' identity: the same label set in any key order is one series, as prom-client hashed it. */
function seriesKey(names: readonly string[], labels: Labels): string {
  let key = '';
  // '=' before a value keeps an empty label apart from an absent one; NUL cannot occur in a header or address.
  for (const n of names) key += labels[n] === undefined ? '\0' : `\0=${labels[n]}`;
  return key;
}

function sample(into: Sample[], labels: Labels): Sample {
  const s: Sample = { labels, value: 0 };
  into.push(s);
  return s;
}

/**
 * Every series, in arrays that keep the order each was first touched: the
 * order prom-client printed them in. Series stay once created (as in
 * Prometheus); per-connection objects are never kept here.
 */
class Store {
  /** Requests so far, all routes: one field the memory reclaimer reads to see load fall. */
  requestCount = 0;
  readonly requests: Sample[] = [];
  readonly responses: Sample[] = [];
  readonly latency: Buckets[] = [];
  readonly opened: Sample[] = [];
  readonly open: Sample[] = [];
  readonly read: Sample[] = [];
  readonly written: Sample[] = [];
  readonly closed: Sample[] = [];
  readonly acceptRefused = new Map<string, Sample>();
  readonly retrySkipped = new Map<string, Sample>();
  readonly internalErrors = new Map<string, Sample>();
  readonly protocolErrors = new Map<string, Sample>();
  readonly detectOutcomes = new Map<string, Sample>();
  readonly detectDuration = new Map<string, Buckets>();
  readonly serverFirstLearned = new Map<string, Sample>();
  readonly earlyUpstreams = new Map<string, Sample>();
}

export class RouteMetrics {
  #requests: Sample | undefined;
  #retries: Sample | undefined;
  readonly #latency = new Map<number, Buckets>();
  /** Responses with neither a gRPC status nor an error, nearly all of them: keyed by status, no string built. */
  readonly #plain = new Map<number, Sample>();
  readonly #other = new Map<string, Sample>();

  constructor(private readonly store: Store, private readonly labels: Labels) {}

  request(): void {
    (this.#requests ??= sample(this.store.requests, this.labels)).value++;
    this.store.requestCount++;
  }

  /** A request sent again (request_total{retry="true"}): counted apart, so request_total without it stays what clients sent. */
  retry(): void {
    (this.#retries ??= sample(this.store.requests, { ...this.labels, retry: 'true' })).value++;
  }

  /** Time to response headers. */
  responseHeaders(status: number, latencyMs: number): void {
    if (!Number.isFinite(latencyMs)) return; // a clock bug must not fail the request
    let h = this.#latency.get(status);
    if (!h) {
      this.#latency.set(status, (h = new Buckets({ ...this.labels, status_code: String(status) }, latencyBucketsMs)));
      this.store.latency.push(h);
    }
    h.observe(latencyMs);
  }

  /** When the response stream ends; gRPC status (from trailers) decides success for gRPC. */
  responseEnd(status: number, grpcStatus: string | undefined, error: string | undefined): void {
    let c: Sample | undefined;
    if (grpcStatus === undefined && error === undefined) {
      c = this.#plain.get(status);
      if (!c) this.#plain.set(status, (c = this.#response(status, undefined, undefined)));
    } else {
      const key = `${status}\0${grpcStatus === undefined ? '' : `=${grpcStatus}`}\0${error === undefined ? '' : `=${error}`}`;
      c = this.#other.get(key);
      if (!c) this.#other.set(key, (c = this.#response(status, grpcStatus, error)));
    }
    c.value++;
  }

  #response(status: number, grpcStatus: string | undefined, error: string | undefined): Sample {
    const failed = error !== undefined || status >= 500 || (grpcStatus !== undefined && grpcStatus !== '0');
    const labels: Labels = { ...this.labels, status_code: String(status), classification: failed ? 'failure' : 'success' };
    if (grpcStatus !== undefined) labels.grpc_status = grpcStatus;
    if (error !== undefined) labels.error = error;
    return sample(this.store.responses, labels);
  }
}

/** The tcp_* series of one connection label set, shared by every connection that has it. */
class ConnSeries {
  readonly opened: Sample;
  readonly open: Sample;
  #read: Sample | undefined;
  #written: Sample | undefined;
  readonly #closed = new Map<string | undefined, Sample>();

  constructor(private readonly store: Store, labels: Labels) {
    this.opened = sample(store.opened, labels);
    this.open = sample(store.open, labels);
  }

  /** `labels`: the closing connection's own, which name a series only the first time (as prom-client kept the first). */
  close(labels: Labels, bytesRead: number, bytesWritten: number, error: string | undefined): void {
    this.open.value--;
    (this.#read ??= sample(this.store.read, labels)).value += bytesRead;
    (this.#written ??= sample(this.store.written, labels)).value += bytesWritten;
    let c = this.#closed.get(error);
    if (!c) this.#closed.set(error, (c = sample(this.store.closed, error === undefined ? labels : { ...labels, error })));
    c.value++;
  }
}

/** One connection's handle: dropped with the connection, its counts live on in the shared ConnSeries. */
export class ConnMetrics {
  constructor(private readonly series: ConnSeries, readonly labels: Labels) {
    series.opened.value++;
    series.open.value++;
  }

  close(bytesRead: number, bytesWritten: number, error: string | undefined): void {
    this.series.close(this.labels, bytesRead, bytesWritten, error);
  }
}

/**
 * A connection still in protocol detection: its TLS labels are not known yet,
 * but it is open, so it counts in tcp_open_connections under the labels it
 * would have if detection found nothing. settle() moves it to its final
 * labels, where tcp_open_total and tcp_close_total count it once.
 */
export class PendingConnMetrics {
  #series: ConnSeries | undefined;

  constructor(series: ConnSeries, readonly labels: Labels) {
    this.#series = series;
    series.open.value++;
  }

  settle(m: ProxyMetrics, labels: ConnLabels): ConnMetrics {
    this.drop();
    return m.connection(labels);
  }

  /** Not a connection of its own after all (a tunnel session: its streams are counted instead). */
  drop(): void {
    if (this.#series !== undefined) this.#series.open.value--;
    this.#series = undefined;
  }
}

/** The workload certificate: registered only when identity is on, so /metrics is unchanged without it. */
export interface IdentityMetrics {
  certExpiration: Gauge<string>;
  refreshSuccess: PromCounter.Internal;
  refreshFailure: PromCounter.Internal;
}

/** The series of `labels` in a map keyed by their values, made on first use. */
function seriesOf(series: Map<string, Sample>, labels: Labels): Sample {
  const key = Object.values(labels).join('\0');
  let s = series.get(key);
  if (!s) series.set(key, (s = { labels, value: 0 }));
  return s;
}

function bump(series: Map<string, Sample>, labels: Labels): void {
  seriesOf(series, labels).value++;
}

export class ProxyMetrics {
  readonly registry = new ExpositionRegistry();
  #identity: IdentityMetrics | undefined;
  readonly #store = new Store();
  /** Route handles by the key callers look up with; at most maxRoutes of them. */
  readonly #routes = new Map<string, RouteMetrics>();
  /** Route handles by label set, so overflowed routes sharing labels share counts. */
  readonly #routeSeries = new Map<string, RouteMetrics>();
  readonly #conns = new Map<string, ConnSeries>();

  /** HTTP requests received so far (request_total over every series, retries not counted). */
  requestsSoFar(): number {
    return this.#store.requestCount;
  }

  constructor(withProcessMetrics = true) {
    const r = this.registry;
    const s = this.#store;
    // Registration order is /metrics order: the same as when these were prom-client metrics.
    exposeCounter(r, 'request_total', 'Total count of HTTP requests.', () => s.requests);
    exposeCounter(r, 'response_total', 'Total count of HTTP responses.', () => s.responses);
    exposeHistogram(r, 'response_latency_ms', 'Elapsed times between a request and its response headers, in milliseconds.', () => s.latency);
    exposeCounter(r, 'tcp_open_total', 'Total count of opened connections.', () => s.opened);
    exposeGauge(r, 'tcp_open_connections', 'Number of currently open connections.', () => s.open);
    exposeCounter(r, 'tcp_read_bytes_total', 'Total count of bytes read from peers.', () => s.read);
    exposeCounter(r, 'tcp_write_bytes_total', 'Total count of bytes written to peers.', () => s.written);
    exposeCounter(r, 'tcp_close_total', 'Total count of closed connections.', () => s.closed);
    exposeCounter(r, 'tcp_accept_refused_total', 'Total count of connections refused at accept, by reason (descriptors running out).', () => s.acceptRefused.values());
    exposeCounter(r, 'http_protocol_errors_total', 'Total count of HTTP protocol errors from clients, by error code.', () => s.protocolErrors.values());
    exposeHistogram(r, 'protocol_detect_duration_seconds', 'Time from accept to a protocol decision, by direction and outcome.', () => s.detectDuration.values());
    exposeCounter(r, 'protocol_detect_total', 'Total count of protocol decisions on accepted connections (and on mTLS sessions whose protocol the client proxy did not know), by outcome.', () => s.detectOutcomes.values());
    exposeCounter(r, 'protocol_detect_early_upstream_total', 'Total count of upstream connections opened for a client still silent after the server-speaks-first window, by what became of them.', () => s.earlyUpstreams.values());
    exposeCounter(r, 'server_first_learned_total', 'Total count of destinations newly learned as server-speaks-first (their next connections skip the window).', () => s.serverFirstLearned.values());
    if (withProcessMetrics) registerProcessMetrics(r);
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
    const l = defined(labels);
    return new ConnMetrics(this.#series(l), l);
  }

  /** A connection accepted and still being detected: open, labels provisional. */
  pending(labels: ConnLabels): PendingConnMetrics {
    const l = defined(labels);
    return new PendingConnMetrics(this.#series(l), l);
  }

  #series(l: Labels): ConnSeries {
    const key = seriesKey(connLabelNames, l);
    let s = this.#conns.get(key);
    if (!s) this.#conns.set(key, (s = new ConnSeries(this.#store, l)));
    return s;
  }

  route(conn: ConnMetrics, authority: string): RouteMetrics {
    const key = `${conn.labels.direction}\0${conn.labels.target_addr}\0${conn.labels.tls}\0${conn.labels.client_id ?? ''}\0${conn.labels.server_id ?? ''}\0${authority}`;
    let r = this.#routes.get(key);
    if (r) return r;
    const overflow = this.#routes.size >= maxRoutes;
    const labels = { ...conn.labels, authority: overflow ? 'overflow' : authority };
    const id = seriesKey(routeLabelNames, labels);
    r = this.#routeSeries.get(id);
    if (!r) this.#routeSeries.set(id, (r = new RouteMetrics(this.#store, labels)));
    if (!overflow) this.#routes.set(key, r);
    return r;
  }

  /** A connection closed at accept, unread: `reason` is 'fd_reserve' (our budget said no) or the errno code (EMFILE, ENFILE). */
  acceptRefused(direction: Direction, reason: string): void {
    bump(this.#store.acceptRefused, { direction, reason });
  }

  /** An exception or rejection nobody handled (proxy/faults.ts): registered on the first, so /metrics shows none until then. */
  internalError(kind: 'exception' | 'rejection'): void {
    const series = this.#store.internalErrors;
    if (series.size === 0) exposeCounter(this.registry, 'proxy_internal_errors_total', 'Total count of errors nobody handled (bugs), by kind: each cost the connection it happened on.', () => series.values());
    bump(series, { kind });
  }

  /** A retry_skipped_total series (the caller keeps it and counts on it). */
  retrySkipped(direction: Direction, authority: string, reason: string): Sample {
    // Registered on first use: /metrics of a proxy without discovery stays as it was.
    const series = this.#store.retrySkipped;
    if (series.size === 0) {
      exposeCounter(this.registry, 'retry_skipped_total', 'Total count of failed requests not retried, by reason (budget, limit, body, ...).', () => series.values());
    }
    // One series per label set: an authority dropped as idle and used again gets its old one back.
    return seriesOf(series, { direction, authority, reason });
  }

  /**
   * Discovery's state, read at scrape time only: destination_client_up and
   * balancer_endpoints{authority, state} (ready | failed | probing).
   */
  discovery(source: { up(): boolean; endpoints(): Iterable<Sample> }): void {
    const up: Sample[] = [{ labels: {}, value: 0 }];
    exposeGauge(this.registry, 'destination_client_up', 'Whether the destination service answers (1) or the proxy serves from its last answers (0).', () => {
      up[0]!.value = source.up() ? 1 : 0;
      return up;
    });
    exposeGauge(this.registry, 'balancer_endpoints', 'Endpoints of each discovered authority, by failure-accrual state.', () => source.endpoints());
  }

  /** Detection decided `outcome` after `seconds` (0 for an opaque port: nothing was waited for). */
  detected(direction: Direction, outcome: DetectOutcome, seconds: number): void {
    const key = `${direction}\0${outcome}`;
    const store = this.#store;
    let h = store.detectDuration.get(key);
    if (h === undefined) store.detectDuration.set(key, (h = new Buckets({ direction, outcome }, detectBucketsSeconds)));
    h.observe(seconds);
    let c = store.detectOutcomes.get(key);
    if (c === undefined) store.detectOutcomes.set(key, (c = { labels: { direction, outcome }, value: 0 }));
    c.value++;
  }

  /** A destination newly known as server-speaks-first. */
  serverFirstLearned(direction: Direction): void {
    bump(this.#store.serverFirstLearned, { direction });
  }

  earlyUpstream(direction: Direction, result: EarlyUpstreamResult): void {
    bump(this.#store.earlyUpstreams, { direction, result });
  }

  /** A client broke HTTP: `code` is the ProxyError code the codec raised (MESH_CLIENT_PROTOCOL, MESH_HEADERS_TOO_LARGE, ...). */
  protocolError(direction: Direction, code: string): void {
    bump(this.#store.protocolErrors, { direction, code });
  }
}
