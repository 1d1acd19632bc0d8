// The one forwarder: joins any server side (HTTP/1 or h2 from a client) to any
// client side (an HTTP/1 pool, an h2 connection, or the mTLS h2 connection to
// a peer proxy), for one request at a time. It owns the exchange: it converts
// heads where the two sides speak differently (HTTP/1 carried as h2 between
// proxies, and restored), moves body chunks with backpressure both ways, and
// turns failures into a 502/504 with the proxy's error header before the
// response has started, or into a reset after. Observers see each exchange
// (metrics now; tap, retries and balancing plug in here next).
import { ProxyError, statusFor } from '../errors.js';
import { endToEnd } from '../headers.js';
import type { ConnContext } from '../context.js';
import type { Log } from '../log.js';
import type { RouteMetrics } from '../metrics.js';
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
}

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

  constructor(
    readonly down: ServerStream,
    readonly request: RequestHead,
    private readonly conversion: Conversion,
    readonly ctx: ConnContext,
    private readonly route: RouteMetrics,
    private readonly f: Forwarder,
  ) {
    this.#requestOpen = !down.bodyless;
  }

  start(dispatcher: Dispatcher, retry: (() => Dispatcher) | undefined): void {
    this.#retry = retry;
    this.route.request();
    const obs = this.f.observers;
    for (let i = 0; i < obs.length; i++) obs[i]!.onRequest(this);
    this.down.listen(new RequestSide(this));
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
    if (this.#state === S_DONE || this.up === undefined) return true;
    return this.up.write(chunk);
  }

  requestEnd(trailers: HeaderList | undefined): void {
    this.#requestOpen = false;
    if (this.#state === S_DONE || this.up === undefined) return;
    this.up.end(trailers !== undefined && this.conversion === 'h1-to-mesh' ? h2TrailersOf(trailers) : trailers);
  }

  clientReset(reset: StreamReset): void {
    this.#requestOpen = false;
    if (this.#state === S_DONE) return;
    this.#state = S_DONE;
    // The client reset or went away: cancel upstream with the same code.
    this.up?.reset({ h2Code: reset.h2Code === H2_NO_ERROR ? H2_CANCEL : reset.h2Code, error: reset.error });
    this.#finish(new ProxyError('MESH_CLIENT_RESET', reset.error.message));
  }

  // Response, upstream → client.
  onContinue(): void {
    if (this.#state === S_REQUEST) this.down.sendContinue();
  }

  onResponse(head: ResponseHead, endStream: boolean): void {
    if (this.#state !== S_REQUEST) return;
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
    if (this.#state === S_REQUEST && e.code === 'MESH_H2_REFUSED' && this.down.bodyless && this.#retry !== undefined) {
      // The peer never processed it (GOAWAY, REFUSED_STREAM): safe to send again, once, on a new connection.
      const retry = this.#retry;
      this.#retry = undefined;
      this.up = retry().request(this.#upstreamHead(), true, this);
      return;
    }
    if (this.#state === S_REQUEST) {
      // Nothing of the response is out yet: answer with the proxy's own error.
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
      return;
    }
    // Part of the response is out: the only honest signal left is a reset, with the upstream's code.
    this.#state = S_DONE;
    this.#logFailure(e);
    this.down.reset({ h2Code: reset.h2Code === H2_NO_ERROR ? H2_INTERNAL_ERROR : reset.h2Code, error: e });
    this.#finish(e);
  }

  onWritable(): void {
    this.down.resume();
  }

  #logFailure(e: ProxyError): void {
    const { ctx } = this;
    this.f.log.info('request failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: e.code, reason: e.message });
  }

  #complete(): void {
    this.#state = S_DONE;
    // A request body nobody will read any more: stop sending it (RFC 9113 §8.1).
    if (this.#requestOpen) this.up?.reset(ignoreReset);
    this.#finish(undefined);
  }

  #finish(error: ProxyError | undefined): void {
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
    if (n.length === 11 && n.toLowerCase() === 'grpc-status') return fields[i + 1];
  }
  return undefined;
}

export class Forwarder {
  readonly log: Log;
  readonly observers: ExchangeObserver[];

  constructor(o: ForwarderOptions) {
    this.log = o.log;
    this.observers = o.observers ?? [];
  }

  /** Forwards one request; the stream is the forwarder's until it ends. */
  forward(down: ServerStream, ctx: ConnContext, route: RouteMetrics, upstream: Upstream): void {
    new Exchange(down, down.head, upstream.conversion, ctx, route, this).start(upstream.dispatcher, upstream.retry);
  }
}
