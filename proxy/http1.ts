// HTTP/1 forwarding. A shared http.Server parses requests on sockets handed to
// it after detection; each request is sent on a pooled keep-alive connection
// to the connection's original destination, bodies streamed both ways.
// Upgrade (WebSocket) and CONNECT become raw tunnels after the request head.
import { Agent, createServer, request, type AgentOptions, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { contextOf, routeOf, type ConnContext } from './context.js';
import { ProxyError, statusFor, upstreamError } from './errors.js';
import { endToEnd, framedRequestHeaders, pairs, rawHeader, requestHead } from './headers.js';
import type { Log } from './log.js';
import type { ProxyMetrics, RouteMetrics } from './metrics.js';
import { forwardOpaque } from './opaque.js';
import { H1ToH2 } from './h1-over-h2.js';
import type { H2Sessions } from './h2-sessions.js';
import type { SessionProtocol } from './transport/header.js';

export interface Http1Options {
  connectTimeoutMs: number;
  metrics: ProxyMetrics;
  log: Log;
  /** Requests to a meshed destination (ctx.peerIdentity) go as HTTP/2 on its mTLS session. */
  sessions?: H2Sessions;
  /** Upgrade/CONNECT tunnels to a meshed destination: an mTLS stream announcing `protocol`. */
  dialMeshed?: (ctx: ConnContext, protocol: SessionProtocol) => Promise<Socket>;
}

export interface Http1Forwarder {
  accept(socket: Socket): void;
  /** Closes idle keep-alive connections; in-flight requests finish. */
  drain(): void;
  /** The keep-alive pool to the destinations, also used for HTTP/1 restored from a peer's h2. */
  readonly agent: Agent;
}

export function http1Forwarder(o: Http1Options): Http1Forwarder {
  const agent = new UpstreamAgent(o.connectTimeoutMs);
  const server = createServer({
    requestTimeout: 0, // bodies may stream for as long as they like
    headersTimeout: 60_000,
    keepAliveTimeout: 60_000,
    requireHostHeader: false, // HTTP/1.0 and odd clients: forward, don't judge
    noDelay: true,
  });

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx = contextOf(req.socket);
    if (!ctx) {
      res.writeHead(500).end();
      return;
    }
    const route = routeOf(o.metrics, ctx, rawHeader(req.rawHeaders, 'host') ?? '');
    if (ctx.peerIdentity !== undefined && o.sessions !== undefined) return new H1ToH2(req, res, ctx, route, o.sessions.get(ctx), o.log).start();
    new Exchange(req, res, ctx, route, agent, o).start();
  };
  server.on('request', forward);
  // Expect: 100-continue goes to the server, which decides; its 100 is relayed.
  server.on('checkContinue', forward);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => tunnel(req, socket, head, o));
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => tunnel(req, socket, head, o));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    o.log.debug('bad HTTP/1 request', { code: err.code, reason: err.message, src: contextOf(socket)?.src });
    if (socket.writable && !socket.destroyed && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    } else socket.destroy();
  });

  return {
    agent,
    accept(socket: Socket): void {
      server.emit('connection', socket);
      // http.Server does not resume a socket paused by detection.
      socket.resume();
    },
    drain(): void {
      server.closeIdleConnections();
      // Pooled upstream sockets close as their requests finish; idle ones now.
      // (agent.destroy() would cut the in-flight requests too.)
      (agent as unknown as { keepAlive: boolean }).keepAlive = false;
      for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
    },
  };
}

/** Upstream sockets that completed their connect: an error on one is a reset, not a refusal. */
const connected = new WeakSet<Socket>();

/**
 * The keep-alive pool, with the connect timeout armed once per new socket
 * rather than once per request. Idle sockets close after 4 s, under the 5 s
 * most servers use, so a request is rarely sent on a connection being closed.
 */
class UpstreamAgent extends Agent {
  constructor(private readonly connectTimeoutMs: number) {
    super({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo', timeout: 4000, noDelay: true } as AgentOptions);
  }

  override createConnection(options: TcpNetConnectOpts): Socket {
    const socket = netConnect(options);
    const timer = setTimeout(() => {
      socket.destroy(new ProxyError('MESH_CONNECT_TIMEOUT', `no connection to ${options.host}:${options.port} within ${this.connectTimeoutMs} ms`));
    }, this.connectTimeoutMs);
    socket.once('connect', () => {
      connected.add(socket);
      clearTimeout(timer);
    });
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }
}

/** One request and its response. */
class Exchange {
  readonly #started = performance.now();
  #status = 0;
  #done = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly ctx: ConnContext,
    private readonly route: RouteMetrics,
    private readonly agent: Agent,
    private readonly o: Http1Options,
  ) {}

  start(): void {
    const { req, res, ctx } = this;
    this.route.request();
    res.sendDate = false; // the server's own Date header is forwarded as is
    const upstream = request({
      host: ctx.target.address,
      port: ctx.target.port,
      family: ctx.target.family,
      method: req.method,
      path: req.url,
      // Transfer-Encoding is hop-by-hop and dropped above; a chunked body is re-framed explicitly.
      headers: framedRequestHeaders(endToEnd(req.rawHeaders), rawHeader(req.rawHeaders, 'transfer-encoding') !== undefined),
      setHost: false,
      agent: this.agent,
    });
    upstream.on('continue', () => res.writeContinue());
    upstream.on('response', (ures: IncomingMessage) => this.#respond(ures));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#fail(upstreamError(err, upstream.socket !== null && connected.has(upstream.socket))));
    // The client went away before the response was complete: stop the upstream too.
    res.on('close', () => {
      if (!this.#done) upstream.destroy();
    });
    req.pipe(upstream);
  }

  #respond(ures: IncomingMessage): void {
    const { res } = this;
    this.#status = ures.statusCode ?? 502;
    this.route.responseHeaders(this.#status, performance.now() - this.#started);
    res.writeHead(this.#status, ures.statusMessage, endToEnd(ures.rawHeaders));
    ures.pipe(res, { end: false });
    ures.on('end', () => {
      if (ures.rawTrailers.length > 0) res.addTrailers(pairs(endToEnd(ures.rawTrailers)));
      this.#finish(undefined, rawHeader(ures.rawTrailers, 'grpc-status') ?? rawHeader(ures.rawHeaders, 'grpc-status'));
      res.end();
    });
    ures.on('error', (err: NodeJS.ErrnoException) => this.#fail(upstreamError(err, true)));
  }

  #fail(e: ProxyError): void {
    if (this.#done) return;
    const { res, ctx } = this;
    this.o.log.info('request failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: e.code, reason: e.message });
    if (!res.headersSent) {
      this.#status = statusFor(e);
      this.route.responseHeaders(this.#status, performance.now() - this.#started);
      const body = `${e.message}\n`;
      res.writeHead(this.#status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'mesh-proxy-error': e.code });
      res.end(body);
    } else {
      // Part of the response is out: the only honest signal left is to cut the connection.
      res.destroy();
    }
    this.#finish(e.code, undefined);
  }

  #finish(error: string | undefined, grpcStatus: string | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.route.responseEnd(this.#status, grpcStatus, error);
  }
}

/** Upgrade and CONNECT: the request head is replayed upstream, then bytes flow raw. */
function tunnel(req: IncomingMessage, socket: Socket, head: Buffer, o: Http1Options): void {
  const ctx = contextOf(socket);
  if (!ctx) return void socket.destroy();
  const route = routeOf(o.metrics, ctx, rawHeader(req.rawHeaders, 'host') ?? req.url ?? '');
  route.request();
  if (head.length > 0) socket.unshift(head);
  const prefix = requestHead(req.method ?? 'GET', req.url ?? '/', req.httpVersion, req.rawHeaders);
  const meshed = ctx.peerIdentity !== undefined && o.dialMeshed !== undefined ? { dial: () => o.dialMeshed!(ctx, 'http1') } : {};
  forwardOpaque(socket, ctx.target, { connectTimeoutMs: o.connectTimeoutMs, prefix, ...meshed }).then((r) => {
    // The response status went by as raw bytes; 101 is what a completed upgrade means.
    route.responseEnd(r.error === undefined ? 101 : 502, undefined, r.error);
  });
}
