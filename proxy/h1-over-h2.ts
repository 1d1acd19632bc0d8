// HTTP/1 between two proxies travels as HTTP/2 inside their mTLS session:
//   client proxy:  HTTP/1 request  → H1ToH2: h2 stream with mesh-orig-* headers
//   server proxy:  h2 stream with mesh-orig-proto → H2ToH1: HTTP/1 request to the app
// One multiplexed session replaces a pool of TCP+TLS connections, and the far
// side restores the request and response as they were (orig-proto.ts).
import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { request, type Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ConnContext } from './context.js';
import { ProxyError, statusFor, upstreamError } from './errors.js';
import { endToEnd, framedRequestHeaders, pairs, rawHeader } from './headers.js';
import type { Log } from './log.js';
import type { RouteMetrics } from './metrics.js';
import { h1RequestOf, h1ResponseOf, h2RequestOf, h2ResponseOf, h2TrailersOf } from './orig-proto.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = constants;
const ignore = (): void => {};

/** Base of both directions: timing, one outcome per request, the failure log line. */
abstract class Bridged {
  readonly #started = performance.now();
  protected status = 0;
  protected done = false;

  constructor(protected readonly ctx: ConnContext, protected readonly route: RouteMetrics, protected readonly log: Log) {}

  protected headersSeen(status: number): void {
    this.status = status;
    this.route.responseHeaders(status, performance.now() - this.#started);
  }

  protected finish(error: string | undefined, grpcStatus: string | undefined): void {
    if (this.done) return;
    this.done = true;
    this.route.responseEnd(this.status, grpcStatus, error);
  }

  protected logFailure(e: ProxyError): void {
    this.log.info('request failed', { direction: this.ctx.direction, src: this.ctx.src, dst: this.ctx.targetAddr, code: e.code, reason: e.message });
  }
}

/** A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3). */
function hasBody(raw: readonly string[]): boolean {
  const length = rawHeader(raw as string[], 'content-length');
  if (length !== undefined) return length.trim() !== '0';
  return rawHeader(raw as string[], 'transfer-encoding') !== undefined;
}

/** Client side: an HTTP/1 request from the app, sent as an h2 stream to the peer proxy. */
export class H1ToH2 extends Bridged {
  #trailers: IncomingHttpHeaders | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    ctx: ConnContext,
    route: RouteMetrics,
    private readonly session: ClientHttp2Session | Promise<ClientHttp2Session>,
    log: Log,
  ) {
    super(ctx, route, log);
  }

  start(): void {
    this.route.request();
    this.res.sendDate = false; // the server's own Date header is forwarded as is
    if (!(this.session instanceof Promise)) return this.#send(this.session);
    this.session.then((s) => this.#send(s), (e: unknown) => this.#fail(upstreamError(e as NodeJS.ErrnoException, false)));
  }

  #send(session: ClientHttp2Session): void {
    const { req, res } = this;
    if (res.closed || res.destroyed) return this.finish('MESH_CLIENT_RESET', undefined);
    const body = hasBody(req.rawHeaders);
    let up: ClientHttp2Stream;
    try {
      const headers = h2RequestOf({ method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, rawHeaders: endToEnd(req.rawHeaders) });
      up = session.request(headers, { endStream: !body });
    } catch (err) {
      // A closing session (GOAWAY) throws here as well as an unrepresentable head.
      return this.#fail(upstreamError(err as NodeJS.ErrnoException, true));
    }
    up.on('continue', () => res.writeContinue());
    up.on('response', (h: IncomingHttpHeaders, flags: number, raw: string[]) => this.#respond(up, h, flags, raw));
    up.on('trailers', (t: IncomingHttpHeaders) => (this.#trailers = t));
    up.on('error', ignore); // judged on 'close' by rstCode
    // The response is complete at its END_STREAM ('end'), even while the request
    // side is still open (a server may answer early, e.g. refusing 100-continue).
    up.on('end', () => this.#complete(up));
    up.on('close', () => {
      if (up.rstCode !== undefined && up.rstCode !== NGHTTP2_NO_ERROR) {
        this.#fail(new ProxyError('MESH_UPSTREAM_RESET', `peer proxy reset the stream (code ${up.rstCode})`));
      } else this.#complete(up);
    });
    // The client went away before the response was complete: cancel the stream.
    res.on('close', () => {
      if (!this.done && !up.closed) up.close(NGHTTP2_CANCEL);
    });
    if (body) req.pipe(up);
    else req.resume();
  }

  #respond(up: ClientHttp2Stream, h: IncomingHttpHeaders, flags: number, raw: string[]): void {
    const r = h1ResponseOf(h, raw);
    this.headersSeen(r.status);
    if (this.res.destroyed) return;
    this.res.writeHead(r.status, r.reason, r.rawHeaders);
    if ((flags & NGHTTP2_FLAG_END_STREAM) === 0) up.pipe(this.res, { end: false });
    else this.#complete(up);
  }

  #complete(up: ClientHttp2Stream): void {
    if (this.done) return;
    const { res } = this;
    if (this.status === 0) return this.#fail(new ProxyError('MESH_UPSTREAM_RESET', 'peer proxy ended the stream without a response'));
    if (res.destroyed) return this.finish('MESH_CLIENT_RESET', undefined);
    if (this.#trailers !== undefined) {
      const t = pairs(flatTrailers(this.#trailers));
      if (t.length > 0) res.addTrailers(t);
    }
    this.finish(undefined, grpcStatusOf(this.#trailers));
    res.end();
    // A request body nobody will read any more: close our side too, or the stream
    // lingers. Only then: a RST_STREAM per request would trip the peer's reset
    // rate limit (nghttp2 answers a flood of them with GOAWAY INTERNAL_ERROR).
    if (!up.closed && !up.writableEnded) up.close(NGHTTP2_NO_ERROR);
  }

  #fail(e: ProxyError): void {
    if (this.done) return;
    const { res } = this;
    this.logFailure(e);
    if (!res.headersSent && !res.destroyed) {
      this.headersSeen(statusFor(e));
      const body = `${e.message}\n`;
      res.writeHead(this.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'mesh-proxy-error': e.code });
      res.end(body);
    } else {
      res.destroy();
    }
    this.finish(e.code, undefined);
  }
}

function flatTrailers(t: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const k in t) {
    const v = t[k];
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else if (v !== undefined) out.push(k, String(v));
  }
  return out;
}

function grpcStatusOf(t: IncomingHttpHeaders | undefined): string | undefined {
  const g = t?.['grpc-status'];
  return g === undefined ? undefined : String(g);
}

/** Server side: an h2 stream carrying an HTTP/1 request, sent to the app as HTTP/1. */
export class H2ToH1 extends Bridged {
  #trailers: string[] = [];

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly rawHeaders: string[],
    ctx: ConnContext,
    route: RouteMetrics,
    private readonly agent: Agent,
    log: Log,
  ) {
    super(ctx, route, log);
  }

  start(): void {
    const { stream, ctx } = this;
    this.route.request();
    stream.on('error', ignore);
    const r = h1RequestOf(this.headers, this.rawHeaders)!;
    const upstream = request({
      host: ctx.target.address,
      port: ctx.target.port,
      family: ctx.target.family,
      method: r.method,
      path: r.url,
      // A body follows the HEADERS frame (no END_STREAM): without a Content-Length it must go chunked.
      headers: framedRequestHeaders(r.rawHeaders, !stream.endAfterHeaders),
      setHost: false,
      agent: this.agent,
    });
    upstream.on('continue', () => {
      if (!stream.closed) stream.additionalHeaders({ ':status': 100 });
    });
    upstream.on('response', (ures: IncomingMessage) => this.#respond(ures));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#fail(upstreamError(err, upstream.socket !== null && !upstream.socket.connecting)));
    stream.on('close', () => {
      // Reset by the peer, or done with a request body still unsent: the
      // request cannot complete, and its connection must not go back to the pool.
      if (!upstream.writableFinished) upstream.destroy();
      if (!this.done) this.finish('MESH_CLIENT_RESET', undefined);
    });
    stream.on('wantTrailers', () => stream.sendTrailers(h2TrailersOf(this.#trailers)));
    if (stream.readableEnded) upstream.end();
    else stream.pipe(upstream);
  }

  #respond(ures: IncomingMessage): void {
    const { stream } = this;
    const status = ures.statusCode ?? 502;
    if (stream.closed) return this.headersSeen(status);
    try {
      // sendDate: false, the app's own Date (or none) is what the client gets.
      stream.respond(h2ResponseOf(status, ures.statusMessage, endToEnd(ures.rawHeaders)), { waitForTrailers: true, sendDate: false } as never);
    } catch (err) {
      // Not expected (orig-proto.ts makes any HTTP/1 head representable); one response, not the process.
      ures.destroy();
      return this.#fail(new ProxyError('MESH_UPSTREAM_PROTOCOL', `response cannot be carried as HTTP/2: ${(err as Error).message}`));
    }
    this.headersSeen(status);
    ures.pipe(stream, { end: false });
    ures.on('end', () => {
      this.#trailers = endToEnd(ures.rawTrailers);
      this.finish(undefined, rawHeader(ures.rawTrailers, 'grpc-status') ?? rawHeader(ures.rawHeaders, 'grpc-status'));
      stream.end();
    });
    ures.on('error', (err: NodeJS.ErrnoException) => this.#fail(upstreamError(err, true)));
  }

  #fail(e: ProxyError): void {
    if (this.done) return;
    const { stream } = this;
    this.logFailure(e);
    if (!stream.headersSent && !stream.closed) {
      this.headersSeen(statusFor(e));
      stream.respond({ ':status': this.status, 'content-type': 'text/plain', 'mesh-proxy-error': e.code }, { endStream: false });
      stream.end(`${e.message}\n`);
    } else if (!stream.closed) {
      stream.close(NGHTTP2_INTERNAL_ERROR);
    }
    this.finish(e.code, undefined);
  }
}
