// The one forwarder: joins any server side (HTTP/1 or h2 from a client) to any
// client side (an HTTP/1 pool, an h2 connection, or the mTLS h2 connection to
// a peer proxy), for one request at a time. It owns the exchange: it converts
// heads where the two sides speak differently (HTTP/1 carried as h2 between
// proxies, and restored), moves body chunks with backpressure both ways, and
// turns failures into a 502/504 with the proxy's error header before the
// response has started, or into a reset after. Observers see each exchange.
//
// A request to a discovered service (forwardBalanced) is made of attempts:
// each picks an endpoint (P2C over peak-EWMA), and a failed attempt is tried
// again when that is safe and the authority allows it: connection failures
// (nothing was sent) on another endpoint, and responses the authority's
// retry-http / retry-grpc name, decided on the response head alone — no
// byte of a response goes to the client before the exchange knows it keeps
// it, and no response is buffered. Only a request whose body is absent or
// held whole in the retry buffer (≤ 64 KiB) is tried again. The authority's
// timeout answers 504 before the response, or resets after it has started.
// Buffer and performance imported, not taken from globalThis: in Node 20 both are getters
// there, gone through on every use (performance.now() ~15 ns slower a call, measured).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { RESILIENCE_DEFAULTS } from '../../contract/destination.js';
import type { Endpoint } from '../balance/endpoint.js';
import type { Service } from '../discovery/service.js';
import { ProxyError, statusFor } from '../errors.js';
import { endToEnd, sameLower } from '../headers.js';
import type { ConnContext } from '../context.js';
import type { Log } from '../log.js';
import type { ProxyMetrics, RouteMetrics } from '../metrics.js';
import { MAX_TIMER_MS } from '../timers.js';
import { h1RequestOf, h1ResponseOf, h2RequestOf, h2ResponseOf, h2TrailersOf } from '../message/h1-over-h2.js';
import {
  H2_CANCEL,
  H2_INTERNAL_ERROR,
  H2_NO_ERROR,
  type ClientStream,
  type Dispatcher,
  type HeaderList,
  type RequestHead,
  type RequestListener,
  type ResponseHead,
  type ResponseListener,
  type ServerStream,
  type StreamReset,
} from '../message/types.js';

/** How the two sides of an exchange speak, and so what the forwarder converts. */
export type Conversion =
  /** Same protocol both sides (h1 → h1, h2 → h2): hop-by-hop fields dropped, nothing else. */
  | 'none'
  /** An HTTP/1 request onto the h2 connection to a peer proxy. */
  | 'h1-to-mesh'
  /** An h2 stream from a peer proxy carrying HTTP/1, to the app as HTTP/1. */
  | 'mesh-to-h1';

/** Where a request goes: decided once per request by the stack that accepted it. */
export interface Upstream {
  dispatcher: Dispatcher;
  conversion: Conversion;
  /** A fresh dispatcher for a request the upstream refused unprocessed (h2 GOAWAY, REFUSED_STREAM). */
  retry?: () => Dispatcher;
}

/** Sees each exchange at its three moments; called synchronously, must not throw. */
export interface ExchangeObserver {
  onRequest(x: ExchangeView): void;
  onResponse(x: ExchangeView): void;
  onEnd(x: ExchangeView): void;
}

/** What observers may read of an exchange. */
export interface ExchangeView {
  readonly request: RequestHead;
  readonly ctx: ConnContext;
  readonly status: number;
  /** performance.now() at the request, and at the response head (0 before it). */
  readonly startedAt: number;
  readonly respondedAt: number;
  /** Response body bytes sent to the client so far. */
  readonly responseBytes: number;
  readonly grpcStatus: string | undefined;
  readonly error: ProxyError | undefined;
}

export interface ForwarderOptions {
  log: Log;
  observers?: ExchangeObserver[];
  /** Counts retries skipped (retry_skipped_total); absent in tests that do not look. */
  metrics?: ProxyMetrics;
  now?: () => number;
}

/** A balanced request: the service it names, where to go when that has nothing, and how it came. */
export interface BalancedTarget {
  service: Service;
  /** The connection's target as discovery knows it (a virtual IP's service): used when `service` says notFound. */
  alternate: Service | undefined;
  /** The original destination: used when discovery has no endpoint for either. */
  origin: Endpoint;
  protocol: 'h1' | 'h2';
}

const MAX_BODY = RESILIENCE_DEFAULTS.retryMaxBodyBytes;
/** Attempts after a failed connection (never sent, so not charged to the budget): bounded all the same. */
const MAX_CONNECT_RETRIES = 2;

/** One attempt's listener: detached when the exchange moves on, so a discarded attempt's late events go nowhere. */
class Attempt implements ResponseListener {
  constructor(public x: Exchange | undefined) {}
  onContinue(): void {
    this.x?.onContinue();
  }
  onResponse(head: ResponseHead, endStream: boolean): void {
    this.x?.onResponse(head, endStream);
  }
  onData(chunk: Buffer): boolean {
    return this.x === undefined ? true : this.x.onData(chunk);
  }
  onEnd(trailers: HeaderList | undefined): void {
    this.x?.onEnd(trailers);
  }
  onReset(reset: StreamReset): void {
    this.x?.onReset(reset);
  }
  onWritable(): void {
    this.x?.onWritable();
  }
}

function fireTimeout(x: Exchange): void {
  x.timedOut();
}

/**
 * Failures before any byte of the request left: no connection, a refused
 * stream, or an mTLS handshake that did not complete (a peer proxy just
 * restarted and not yet certified, a wrong identity at that address).
 */
const connectClass = (code: string): boolean =>
  code === 'MESH_CONNECT_REFUSED' ||
  code === 'MESH_CONNECT_FAILED' ||
  code === 'MESH_CONNECT_TIMEOUT' ||
  code === 'MESH_H2_REFUSED' ||
  code === 'MESH_TLS_HANDSHAKE' ||
  code === 'MESH_PEER_CERT_INVALID' ||
  code === 'MESH_PEER_IDENTITY_MISMATCH';

const ignoreReset: StreamReset = { h2Code: H2_NO_ERROR, error: new ProxyError('MESH_CLIENT_RESET', 'response complete') };

/** Per request: the client side's listener (request body in, response out). */
class RequestSide implements RequestListener {
  constructor(private readonly x: Exchange) {}
  onData(chunk: Buffer): boolean {
    return this.x.requestData(chunk);
  }
  onEnd(trailers: HeaderList | undefined): void {
    this.x.requestEnd(trailers);
  }
  onReset(reset: StreamReset): void {
    this.x.clientReset(reset);
  }
  onWritable(): void {
    this.x.up?.resume();
  }
}

const S_REQUEST = 0; // waiting for the response head
const S_RESPONSE = 1; // response head sent, body flowing
const S_DONE = 2;

class Exchange implements ResponseListener, ExchangeView {
  readonly startedAt = performance.now();
  respondedAt = 0;
  responseBytes = 0;
  status = 0;
  error: ProxyError | undefined;
  up: ClientStream | undefined;
  grpcStatus: string | undefined;
  #state = S_REQUEST;
  #requestOpen: boolean;
  #retry: (() => Dispatcher) | undefined;
  // Balanced requests only (undefined/zero otherwise).
  #b: BalancedTarget | undefined;
  /** The service this request is balanced over, once its first answer is in. */
  #svc: Service | undefined;
  #attempt: Attempt | undefined;
  #ep: Endpoint | undefined;
  #sentAt = 0;
  #retries = 0;
  #connectRetries = 0;
  /** The request body so far, copied, while it may be sent again; undefined once it cannot be. */
  #body: Buffer[] | undefined;
  #bodyBytes = 0;
  #trailers: HeaderList | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Where the last attempt failed: a retry goes elsewhere when it can. */
  #failedOn: Endpoint | undefined;

  constructor(
    readonly down: ServerStream,
    readonly request: RequestHead,
    private conversion: Conversion,
    readonly ctx: ConnContext,
    private readonly route: RouteMetrics,
    private readonly f: Forwarder,
  ) {
    this.#requestOpen = !down.bodyless;
  }

  /** A balanced request: listened to at once, sent when its service is known (at once, nearly always). */
  startBalanced(b: BalancedTarget): void {
    this.#b = b;
    // Kept from the first chunk: until the service answers nothing can be sent, and after that a retry may need it.
    if (!this.down.bodyless) this.#body = [];
    this.#open();
    if (this.#state === S_DONE) return;
    b.service.wait(this);
  }

  /** Counted, shown to the observers, and listened to: the request side is ours from here. */
  #open(): void {
    this.route.request();
    const obs = this.f.observers;
    for (let i = 0; i < obs.length; i++) obs[i]!.onRequest(this);
    this.down.listen(new RequestSide(this));
  }

  /** The service has answered (or the wait is over): choose where the request goes. */
  resolved(): void {
    if (this.#state === S_DONE) return;
    const b = this.#b!;
    const svc = b.service.usable ? b.service : b.alternate?.usable ? b.alternate : undefined;
    this.#svc = svc;
    if (svc !== undefined) {
      const p = svc.policy;
      // The budget only matters where there are retries to pay for.
      if (p.retryLimit > 0) svc.budget.deposit(this.f.now());
      // Node fires a delay past 2^31-1 ms (24.8 days) after 1 ms: "720h" meant no timeout, not an instant 504.
      if (p.timeoutMs > 0 && p.timeoutMs < MAX_TIMER_MS) this.#timer = setTimeout(fireTimeout, Math.max(1, p.timeoutMs - (performance.now() - this.startedAt)), this);
      // Nothing will ever replay the body: stop copying it once the first attempt has it.
      if (p.retryLimit === 0 && svc.balancer.endpoints.length <= 1) this.#keepBody = false;
    } else this.#keepBody = false;
    this.#send();
  }

  /** Whether the body is still copied for a possible retry (the first attempt always gets the copy). */
  #keepBody = true;
  /** Attempts sent: a nested attempt (a synchronous failure retried) makes the outer one stale. */
  #sends = 0;

  #send(): void {
    const b = this.#b!;
    const svc = this.#svc;
    const eps = svc?.balancer.endpoints;
    // Latency and health are kept only where there is a choice to make: with one endpoint there
    // is nothing to balance or take out, and the request costs what it did without discovery.
    const many = eps !== undefined && eps.length > 1;
    let ep: Endpoint;
    if (many) {
      const now = this.f.now();
      ep = svc!.balancer.pick(now, this.#failedOn)!;
      this.#ep = ep;
      this.#sentAt = now;
      ep.ewma!.pending++;
      ep.accrual!.dispatched(now);
    } else ep = eps === undefined || eps.length === 0 ? b.origin : eps[0]!; // a retry after discovery emptied the service: where it would go without discovery
    this.conversion = ep.conversion(b.protocol);
    // A discarded attempt (retry, timeout) must not reach the exchange again: it gets a listener
    // of its own that is cut loose. Where neither can happen, the exchange listens itself.
    const att = many || (svc !== undefined && (svc.policy.retryLimit > 0 || svc.policy.timeoutMs > 0)) ? new Attempt(this) : undefined;
    this.#attempt = att;
    const n = ++this.#sends;
    const up = ep.dispatcher(b.protocol).request(this.#upstreamHead(), this.down.bodyless, att ?? this);
    if (n !== this.#sends || this.#state === S_DONE || (att !== undefined && att.x === undefined)) return; // failed at once, and already moved on
    this.up = up;
    let writable = true;
    const body = this.#body;
    if (body !== undefined) for (let i = 0; i < body.length; i++) writable = up.write(body[i]!);
    if (!this.#keepBody || this.#bodyBytes > MAX_BODY) this.#body = undefined;
    if (!this.#requestOpen) {
      if (!this.down.bodyless) up.end(this.#upstreamTrailers(this.#trailers));
    } else if (writable) this.down.resume();
  }

  /** This attempt is over: its endpoint's in-flight count and health, once. */
  #settle(failed: boolean): void {
    const ep = this.#ep;
    this.#ep = undefined;
    if (failed) this.#failedOn = ep;
    if (ep?.ewma === undefined) return;
    ep.ewma.pending--;
    if (failed) ep.accrual!.failure(this.f.now());
    else ep.accrual!.success();
  }

  /** Drops the current attempt (its late events go nowhere) and sends another. */
  #again(reason: 'connect' | 'status' | 'grpc', upReset: boolean): void {
    if (this.#attempt !== undefined) this.#attempt.x = undefined;
    if (upReset) this.up?.reset(ignoreReset);
    this.up = undefined;
    this.route.retry();
    if (this.f.log.enabled('debug')) this.f.log.debug('retrying', { direction: this.ctx.direction, dst: this.#svc?.authority, reason, status: this.status });
    this.status = 0;
    this.#send();
  }

  /**
   * Why a retry cannot happen, or undefined when it can (the budget is asked
   * last: asking spends it). `connectCode`: the attempt was never sent.
   */
  #cannotRetry(connectCode?: string): string | undefined {
    const svc = this.#svc;
    if (!this.down.bodyless && this.#body === undefined) return 'body';
    if (connectCode !== undefined) {
      // Another endpoint, when there is one; the same one only for a refused stream (a fresh connection will take it).
      const n = svc === undefined ? 0 : svc.balancer.endpoints.length;
      const limit = n > 1 ? MAX_CONNECT_RETRIES : connectCode === 'MESH_H2_REFUSED' ? 1 : 0;
      return this.#connectRetries < limit ? undefined : 'limit';
    }
    if (svc === undefined) return 'no_service';
    if (this.#requestOpen) return 'body';
    if (this.#retries >= svc.policy.retryLimit) return 'limit';
    return svc.budget.withdraw(this.f.now()) ? undefined : 'budget';
  }

  /** The authority's timeout: 504 before the response, a reset once it has started. */
  timedOut(): void {
    this.#timer = undefined;
    if (this.#state === S_DONE) return;
    const e = new ProxyError('MESH_REQUEST_TIMEOUT', `no complete response within ${this.#svc?.policy.timeoutMs} ms`);
    if (this.#attempt !== undefined) this.#attempt.x = undefined;
    this.up?.reset({ h2Code: H2_CANCEL, error: e });
    this.#settle(true);
    if (this.#state === S_REQUEST) return this.#answerError(e);
    this.#state = S_DONE;
    this.#logFailure(e);
    this.down.reset({ h2Code: H2_CANCEL, error: e });
    this.#finish(e);
  }

  start(dispatcher: Dispatcher, retry: (() => Dispatcher) | undefined): void {
    this.#retry = retry;
    this.#open();
    if (this.#state === S_DONE) return; // the client went away while being listened to
    this.up = dispatcher.request(this.#upstreamHead(), this.down.bodyless, this);
  }

  #upstreamHead(): RequestHead {
    const h = this.request;
    switch (this.conversion) {
      case 'none':
        return h.version === 20 ? h : endToEndHead(h);
      case 'h1-to-mesh':
        return h2RequestOf(endToEndHead(h));
      case 'mesh-to-h1':
        return h1RequestOf(h)!;
    }
  }

  // Request body, client → upstream.
  requestData(chunk: Buffer): boolean {
    if (this.#state === S_DONE) return true;
    const body = this.#body;
    if (body !== undefined) {
      this.#bodyBytes += chunk.length;
      if (this.up === undefined) {
        // Not sent yet (the service is being resolved): every chunk waits here, and the client is paused.
        body.push(Buffer.from(chunk));
        return false;
      }
      // Beyond the retry buffer: this request will not be sent again.
      if (this.#bodyBytes > MAX_BODY || !this.#keepBody) this.#body = undefined;
      // The chunk may be a view into the codec's read buffer: a copy is what may be replayed.
      else body.push(Buffer.from(chunk));
    }
    if (this.up === undefined) return true;
    return this.up.write(chunk);
  }

  requestEnd(trailers: HeaderList | undefined): void {
    this.#requestOpen = false;
    this.#trailers = trailers;
    if (this.#state === S_DONE || this.up === undefined) return;
    this.up.end(this.#upstreamTrailers(trailers));
  }

  #upstreamTrailers(trailers: HeaderList | undefined): HeaderList | undefined {
    return trailers !== undefined && this.conversion === 'h1-to-mesh' ? h2TrailersOf(trailers) : trailers;
  }

  clientReset(reset: StreamReset): void {
    this.#requestOpen = false;
    if (this.#state === S_DONE) return;
    this.#state = S_DONE;
    // The client reset or went away: cancel upstream with the same code.
    if (this.#attempt !== undefined) this.#attempt.x = undefined;
    this.up?.reset({ h2Code: reset.h2Code === H2_NO_ERROR ? H2_CANCEL : reset.h2Code, error: reset.error });
    // Not the endpoint's fault: its in-flight count drops, its health does not change. A probe
    // of a failed endpoint is handed back (else it would stay 'probing', out of rotation for good).
    const ep = this.#ep;
    this.#ep = undefined;
    if (ep?.ewma !== undefined) {
      ep.ewma.pending--;
      ep.accrual!.abandoned();
    }
    this.#finish(new ProxyError('MESH_CLIENT_RESET', reset.error.message));
  }

  // Response, upstream → client.
  onContinue(): void {
    if (this.#state === S_REQUEST) this.down.sendContinue();
  }

  onResponse(head: ResponseHead, endStream: boolean): void {
    if (this.#state !== S_REQUEST) return;
    if (this.#b !== undefined) {
      const ep = this.#ep;
      const now = ep !== undefined ? this.f.now() : 0;
      if (ep !== undefined) ep.ewma!.observe(now - this.#sentAt, now);
      if (this.#svc !== undefined && this.#svc.policy.retryLimit > 0 && this.#retryable(head, endStream)) {
        const why = this.#cannotRetry();
        if (why === undefined) {
          this.status = head.status;
          this.#settle(true);
          this.#retries++;
          return this.#again(this.#grpcRetry ? 'grpc' : 'status', !endStream);
        }
        this.#skipped(why);
      }
      if (ep !== undefined) {
        if (head.status >= 500) ep.accrual!.failure(now);
        else ep.accrual!.success();
      }
    }
    this.#state = S_RESPONSE;
    this.status = head.status;
    this.respondedAt = performance.now();
    this.route.responseHeaders(head.status, this.respondedAt - this.startedAt);
    const obs = this.f.observers;
    for (let i = 0; i < obs.length; i++) obs[i]!.onResponse(this);
    if (endStream) this.grpcStatus = grpcStatusOf(head.headers);
    this.down.respond(this.#downstreamHead(head), endStream);
    if (endStream) this.#complete();
  }

  #downstreamHead(head: ResponseHead): ResponseHead {
    switch (this.conversion) {
      case 'none':
        return head.version === 20 ? head : endToEndHead(head);
      case 'h1-to-mesh':
        return h1ResponseOf(head, this.request.version === 10 ? 10 : 11);
      case 'mesh-to-h1':
        return h2ResponseOf(endToEndHead(head));
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.#state !== S_RESPONSE) return true;
    this.responseBytes += chunk.length;
    return this.down.write(chunk);
  }

  onEnd(trailers: HeaderList | undefined): void {
    if (this.#state !== S_RESPONSE) return;
    if (trailers !== undefined) {
      this.grpcStatus = grpcStatusOf(trailers);
      if (this.conversion === 'mesh-to-h1') trailers = h2TrailersOf(endToEnd(trailers));
      else if (this.conversion === 'none' && this.request.version !== 20) trailers = endToEnd(trailers);
    }
    this.down.end(trailers);
    this.#complete();
  }

  onReset(reset: StreamReset): void {
    if (this.#state === S_DONE) return;
    const e = reset.error;
    if (this.#b !== undefined) {
      const before = this.#state === S_REQUEST;
      // Before the response: the endpoint failed this request; after: it cut a response it had started.
      this.#settle(true);
      if (before && connectClass(e.code)) {
        // Never sent (connect failed, stream refused): safe on another endpoint, and not the budget's business.
        const why = this.#cannotRetry(e.code);
        if (why === undefined) {
          this.#connectRetries++;
          return this.#again('connect', false);
        }
        this.#skipped(why);
      }
      if (this.#attempt !== undefined) this.#attempt.x = undefined;
    } else if (this.#state === S_REQUEST && e.code === 'MESH_H2_REFUSED' && this.down.bodyless && this.#retry !== undefined) {
      // The peer never processed it (GOAWAY, REFUSED_STREAM): safe to send again, once, on a new connection.
      const retry = this.#retry;
      this.#retry = undefined;
      this.up = retry().request(this.#upstreamHead(), true, this);
      return;
    }
    if (this.#state === S_REQUEST) return this.#answerError(e);
    // Part of the response is out: the only honest signal left is a reset, with the upstream's code.
    this.#state = S_DONE;
    this.#logFailure(e);
    this.down.reset({ h2Code: reset.h2Code === H2_NO_ERROR ? H2_INTERNAL_ERROR : reset.h2Code, error: e });
    this.#finish(e);
  }

  onWritable(): void {
    this.down.resume();
  }

  /** Nothing of the response is out yet: answer with the proxy's own error. */
  #answerError(e: ProxyError): void {
    this.#state = S_DONE;
    this.#logFailure(e);
    this.status = statusFor(e);
    this.respondedAt = performance.now();
    this.route.responseHeaders(this.status, this.respondedAt - this.startedAt);
    const body = Buffer.from(`${e.message}\n`, 'latin1');
    this.down.respond(
      { status: this.status, reason: '', version: this.request.version, headers: ['content-type', 'text/plain', 'content-length', String(body.length), 'mesh-proxy-error', e.code] },
      false,
    );
    this.down.write(body);
    this.down.end();
    this.#finish(e);
  }

  #grpcRetry = false;

  /** Whether the authority retries this response head (a status, or a trailers-only gRPC status). */
  #retryable(head: ResponseHead, endStream: boolean): boolean {
    const p = this.#svc!.policy;
    this.#grpcRetry = false;
    if (p.retriesStatus(head.status)) return true;
    if (!endStream || !p.retriesGrpcAtAll) return false;
    const g = grpcStatusOf(head.headers);
    if (g === undefined || !p.retriesGrpc(g)) return false;
    this.#grpcRetry = true;
    return true;
  }

  #skipped(reason: string): void {
    const svc = this.#svc;
    const m = this.f.metrics;
    if (m === undefined) return;
    if (svc === undefined) return void m.retrySkipped(this.ctx.direction, this.#b?.service.authority ?? '', reason).value++;
    let c = svc.skipped.get(reason);
    if (c === undefined) svc.skipped.set(reason, (c = m.retrySkipped(this.ctx.direction, svc.authority, reason)));
    c.value++;
  }

  #logFailure(e: ProxyError): void {
    const { ctx } = this;
    this.f.log.info('request failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: e.code, reason: e.message });
  }

  #complete(): void {
    // Once: a codec may end the exchange (a reset) from inside the call that completes it.
    if (this.#state === S_DONE) return;
    this.#state = S_DONE;
    const ep = this.#ep;
    this.#ep = undefined;
    if (ep?.ewma !== undefined) ep.ewma.pending--;
    // A request body nobody will read any more: stop sending it (RFC 9113 §8.1).
    if (this.#requestOpen) this.up?.reset(ignoreReset);
    this.#finish(undefined);
  }

  #finish(error: ProxyError | undefined): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#body = undefined;
    this.error = error;
    this.route.responseEnd(this.status, this.grpcStatus, error?.code);
    const obs = this.f.observers;
    for (let i = 0; i < obs.length; i++) obs[i]!.onEnd(this);
  }
}

/** The head without hop-by-hop fields; the same object when it has none (the common case: no copy). */
function endToEndHead<H extends { headers: HeaderList }>(h: H): H {
  const e = endToEnd(h.headers);
  return e === h.headers ? h : { ...h, headers: e };
}

/** grpc-status from a trailer list (or a trailers-only head), names compared case-insensitively. */
function grpcStatusOf(fields: HeaderList): string | undefined {
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i]!;
    if (sameLower(n, 'grpc-status')) return grpcCode(fields[i + 1]!);
  }
  return undefined;
}

/** A metric label from a response's grpc-status: the codes gRPC defines (0-16), else one value, so an upstream cannot make series without bound. */
function grpcCode(v: string): string {
  if (v.length === 1) return v.charCodeAt(0) >= 48 && v.charCodeAt(0) <= 57 ? v : 'invalid';
  return v.length === 2 && v.charCodeAt(0) === 49 && v.charCodeAt(1) >= 48 && v.charCodeAt(1) <= 54 ? v : 'invalid';
}

export class Forwarder {
  readonly log: Log;
  readonly observers: ExchangeObserver[];
  readonly metrics: ProxyMetrics | undefined;
  readonly now: () => number;

  constructor(o: ForwarderOptions) {
    this.log = o.log;
    this.observers = o.observers ?? [];
    this.metrics = o.metrics;
    this.now = o.now ?? (() => performance.now());
  }

  /** Forwards one request to a discovered service, an endpoint chosen per attempt. */
  forwardBalanced(down: ServerStream, ctx: ConnContext, route: RouteMetrics, target: BalancedTarget): void {
    new Exchange(down, down.head, 'none', ctx, route, this).startBalanced(target);
  }

  /** Forwards one request; the stream is the forwarder's until it ends. */
  forward(down: ServerStream, ctx: ConnContext, route: RouteMetrics, upstream: Upstream): void {
    new Exchange(down, down.head, upstream.conversion, ctx, route, this).start(upstream.dispatcher, upstream.retry);
  }
}
