// HTTP/2 (prior-knowledge h2c) forwarding. A shared http2 server takes sockets
// after detection; each stream is re-sent on one multiplexed client session
// per destination. Headers, bodies (with flow control, via pipe), trailers
// and resets cross in both directions.
import {
  constants,
  createServer,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { contextOf, routeOf, type ConnContext } from './context.js';
import { ProxyError, statusFor, upstreamError } from './errors.js';
import type { Log } from './log.js';
import type { ProxyMetrics, RouteMetrics } from './metrics.js';
import type { H2Sessions } from './h2-sessions.js';
import { ORIG_PROTO } from './orig-proto.js';

export interface H2Options {
  metrics: ProxyMetrics;
  log: Log;
  /** Where streams go: one session per destination, plain or mTLS. */
  sessions: H2Sessions;
  /** Takes over streams that carry an HTTP/1 request from a peer proxy (mesh-orig-proto). */
  origProto?: OrigProtoHandler;
}

export type OrigProtoHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], ctx: ConnContext, route: RouteMetrics) => void;

export interface H2Forwarder {
  accept(socket: Socket): void;
  /** GOAWAY to every session: no new streams, in-flight ones finish. */
  drain(): void;
}

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = constants;
const ignore = (): void => {};

export function h2Forwarder(o: H2Options): H2Forwarder {
  const server = createServer({ maxSessionMemory: 64 });
  const downstream = new Set<ServerHttp2Session>();

  // http2 hands out a Proxy for session.socket, so the context is looked up on
  // the real socket while 'session' fires, synchronously inside emit('connection').
  let accepting: ConnContext | undefined;
  const sessionContext = new WeakMap<ServerHttp2Session, ConnContext>();
  server.on('session', (s: ServerHttp2Session) => {
    if (accepting) sessionContext.set(s, accepting);
    downstream.add(s);
    s.once('close', () => downstream.delete(s));
    s.on('error', (err) => o.log.debug('h2 session error', { reason: err.message }));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', ignore); // surfaced through 'close' and rstCode
    const ctx = stream.session ? sessionContext.get(stream.session as ServerHttp2Session) : undefined;
    if (!ctx) return void stream.close(NGHTTP2_INTERNAL_ERROR);
    const route = routeOf(o.metrics, ctx, String(headers[':authority'] ?? headers.host ?? ''));
    if (o.origProto !== undefined && headers[ORIG_PROTO] !== undefined) return o.origProto(stream, headers, rawHeaders, ctx, route);
    new H2Exchange(stream, headers, ctx, route, o.sessions.get(ctx), o).start();
  });

  return {
    accept(socket: Socket): void {
      accepting = contextOf(socket);
      server.emit('connection', socket);
      accepting = undefined;
    },
    drain(): void {
      for (const s of downstream) s.close();
      o.sessions.drain();
    },
  };
}

/** Request headers to send upstream: pseudo-headers and all others, as received. */
function requestHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) if (k !== ':protocol') out[k] = h[k];
  return out;
}

function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) out[k] = h[k];
  return out;
}

class H2Exchange {
  readonly #started = performance.now();
  #status = 0;
  #trailers: IncomingHttpHeaders | undefined;
  #done = false;
  #upstream: ClientHttp2Stream | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly ctx: ConnContext,
    private readonly route: RouteMetrics,
    private readonly session: ClientHttp2Session | Promise<ClientHttp2Session>,
    private readonly o: H2Options,
  ) {}

  start(): void {
    this.route.request();
    if (!(this.session instanceof Promise)) return this.#send(this.session);
    // An mTLS session still connecting: a client that resets meanwhile is counted by #send.
    this.session.then((s) => this.#send(s), (e: unknown) => this.#fail(upstreamError(e as NodeJS.ErrnoException, false)));
  }

  #send(session: ClientHttp2Session): void {
    const { stream } = this;
    if (stream.closed) return this.#finish('MESH_CLIENT_RESET', undefined);
    let up: ClientHttp2Stream;
    try {
      up = session.request(requestHeaders(this.headers), { endStream: stream.readableEnded });
    } catch (err) {
      return this.#fail(upstreamError(err as NodeJS.ErrnoException, !session.connecting));
    }
    this.#upstream = up;
    up.on('response', (h: IncomingHttpHeaders, flags: number) => this.#respond(h, flags));
    up.on('trailers', (t: IncomingHttpHeaders) => (this.#trailers = t));
    up.on('error', (err: NodeJS.ErrnoException) => this.#fail(upstreamError(err, !session.connecting)));
    // The response ends here, not through pipe(): only 'close' tells a clean
    // end from a reset, and a reset must reach the client as a reset.
    up.on('close', () => {
      if (up.rstCode !== undefined && up.rstCode !== constants.NGHTTP2_NO_ERROR) {
        this.#fail(new ProxyError('MESH_UPSTREAM_RESET', `upstream reset the stream (code ${up.rstCode})`), up.rstCode);
      } else if (this.#status !== 0 && !stream.closed) {
        stream.end();
        this.#finish(undefined, this.#trailers);
      }
    });
    stream.on('close', () => {
      // The client reset or went away: cancel upstream with the same code.
      if (!up.closed) up.close(stream.rstCode && stream.rstCode !== constants.NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
      if (!this.#done) this.#finish('MESH_CLIENT_RESET', this.#trailers);
    });
    // With no upstream trailers an empty trailer block ends the stream, as
    // Node's own compatibility layer does. close() here sends RST_STREAM, which
    // lets the tail of the body race the reset: clients saw corrupted bodies.
    stream.on('wantTrailers', () => stream.sendTrailers(this.#trailers ? responseHeaders(this.#trailers) : {}));
    if (!stream.readableEnded) stream.pipe(up);
  }

  #respond(h: IncomingHttpHeaders, flags: number): void {
    const { stream } = this;
    this.#status = Number(h[':status'] ?? 502);
    this.route.responseHeaders(this.#status, performance.now() - this.#started);
    if (stream.closed) return;
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    // Trailers-only responses (gRPC errors) end with the headers themselves.
    stream.respond(responseHeaders(h), endStream ? { endStream: true } : { waitForTrailers: true });
    if (endStream) return this.#finish(undefined, h);
    this.#upstream!.pipe(stream, { end: false });
  }

  #fail(e: ProxyError, rstCode = NGHTTP2_INTERNAL_ERROR): void {
    if (this.#done) return;
    const { stream, ctx } = this;
    this.o.log.info('request failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: e.code, reason: e.message });
    if (!stream.headersSent && !stream.closed) {
      this.#status = statusFor(e);
      this.route.responseHeaders(this.#status, performance.now() - this.#started);
      stream.respond({ ':status': this.#status, 'content-type': 'text/plain', 'mesh-proxy-error': e.code }, { endStream: false });
      stream.end(`${e.message}\n`);
    } else if (!stream.closed) {
      stream.close(rstCode);
    }
    this.#finish(e.code, undefined);
  }

  #finish(error: string | undefined, trailers: IncomingHttpHeaders | undefined): void {
    if (this.#done) return;
    this.#done = true;
    const grpc = trailers?.['grpc-status'];
    this.route.responseEnd(this.#status, grpc === undefined ? undefined : String(grpc), error);
  }
}
