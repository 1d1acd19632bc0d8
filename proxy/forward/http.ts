// The HTTP stage of both stacks: a server codec on the accepted (or
// decrypted) stream, and for each request one decision — which upstream,
// spoken how — handed to the forwarder with the route's metrics.
//   HTTP/1 from the app → HTTP/1 pool to the destination, or the meshed h2
//     connection to its proxy (carried as h2, restored there)
//   h2 from the app → the h2 connection to the destination (h2c or meshed)
//   h2 from a peer proxy → HTTP/1 pool to the app when it carries HTTP/1,
//     else the app's h2c connection
// Upgrade and CONNECT leave the codec as raw tunnels.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { formatAddr, routeOf, type ConnContext } from '../context.js';
import type { ProxyError } from '../errors.js';
import { H1ServerConnection } from '../h1/index.js';
import type { Deadlines } from '../h1/deadlines.js';
import { H2ServerConnection } from '../h2/index.js';
import type { Log } from '../log.js';
import type { ProxyMetrics } from '../metrics.js';
import { carriesH1 } from '../message/h1-over-h2.js';
import type { ClientStream, Dispatcher, RequestHead, ResponseListener, ServerHandler, ServerStream } from '../message/types.js';
import type { SocketAddress } from '../../native/index.js';
import { forwardOpaque } from '../opaque.js';
import { resetAndDestroy } from '../transport/tls.js';
import type { Connector } from '../connect/upstreams.js';
import type { Forwarder, BalancedTarget, Upstream } from './forwarder.js';
import { Endpoint } from '../balance/endpoint.js';
import type { Service } from '../discovery/service.js';
import { sameLower } from '../headers.js';

/** What the HTTP stage needs of discovery (proxy/discovery/cache.ts; tests give their own). */
export interface DiscoveryLookup {
  service(authority: string): Service;
  readonly epoch: number;
}

export interface HttpStageOptions {
  log: Log;
  metrics: ProxyMetrics;
  forwarder: Forwarder;
  /** Upstreams of this direction (its own connect timeout). */
  upstreams: Connector;
  connectTimeoutMs: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  deadlines?: Deadlines;
  /** Outbound only: requests are balanced over what discovery knows of their authority. */
  discovery?: DiscoveryLookup;
}

/**
 * The discovery key of an authority: lower case, with the port the
 * connection went to when the authority names none (a Host without a port).
 */
export function authorityKey(raw: string, ctx: ConnContext): string {
  if (raw === '') return ctx.targetAddr;
  const colon = raw.lastIndexOf(':');
  const lower = raw.toLowerCase();
  return colon < 0 || raw.endsWith(']') ? `${lower}:${ctx.target.port}` : lower;
}

/** The authority a request names: :authority on h2, Host on HTTP/1 (else the target's for CONNECT). */
function authorityOf(h: RequestHead): string {
  if (h.authority !== undefined) return h.authority;
  const fields = h.headers;
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i]!;
    if (sameLower(n, 'host')) return fields[i + 1]!;
  }
  return h.method === 'CONNECT' ? h.target : '';
}

/**
 * A connection's way to its upstream: asks the connector per request, so a pool
 * or an h2 connection replaced meanwhile (GOAWAY, lost, full) is never held on to.
 */
class ToUpstream implements Dispatcher {
  constructor(
    private readonly ups: Connector,
    private readonly target: SocketAddress,
    private readonly key: string,
    private readonly kind: 'h1' | 'h2',
    private readonly peer: string | undefined,
  ) {}

  request(head: RequestHead, bodyless: boolean, listener: ResponseListener): ClientStream {
    const d = this.kind === 'h1' ? this.ups.h1(this.target, this.key) : this.ups.h2(this.target, this.key, this.peer);
    return d.request(head, bodyless, listener);
  }
}

/** Serves one connection's requests. One object per connection, not per request. */
class ConnHandler implements ServerHandler {
  constructor(
    private readonly ctx: ConnContext,
    private readonly protocol: 'h1' | 'h2',
    private readonly stage: HttpStage,
  ) {}

  onRequest(stream: ServerStream): void {
    const { ctx, stage } = this;
    const authority = authorityOf(stream.head);
    const route = routeOf(stage.o.metrics, ctx, authority);
    // Outbound with discovery, unless the override list names the destination's proxy itself.
    if (stage.o.discovery !== undefined && ctx.direction === 'outbound' && ctx.peerIdentity === undefined) {
      const t = stage.balancedFor(ctx, this.protocol, authority);
      if (t !== undefined) return stage.o.forwarder.forwardBalanced(stream, ctx, route, t);
    }
    stage.o.forwarder.forward(stream, ctx, route, stage.upstreamFor(ctx, this.protocol, stream.head));
  }
}

/** Asks a served connection to close once what it carries is done: GOAWAY on h2, `Connection: close` on HTTP/1. */
function closeWhenDone(c: H1ServerConnection | H2ServerConnection): void {
  if (c instanceof H2ServerConnection) c.close();
  else c.drain();
}

export class HttpStage {
  /** The connections this stage serves, so that a shutdown can tell each to close (HTTP/1 after its exchange, h2 by GOAWAY). */
  readonly #live = new Set<H1ServerConnection | H2ServerConnection>();
  #draining = false;

  constructor(readonly o: HttpStageOptions) {}

  /**
   * Shutdown: every connection is told to close once what it carries is done: HTTP/1
   * answers its current request with `Connection: close` (an idle one closes now), h2
   * sends GOAWAY (streams already open finish; the peer opens new ones elsewhere).
   * Connections served from now on are drained at once.
   */
  drain(): void {
    this.#draining = true;
    for (const c of this.#live) closeWhenDone(c);
    this.#live.clear();
  }

  #track(c: H1ServerConnection | H2ServerConnection, client: Socket): void {
    if (this.#draining) return closeWhenDone(c);
    this.#live.add(c);
    client.once('close', () => this.#live.delete(c));
  }

  /**
   * The service a request is balanced over: its authority's, else the
   * connection's target's; undefined when discovery knows neither (the
   * request goes to its original destination as without discovery).
   * Cached on the connection: most connections name one authority.
   */
  balancedFor(ctx: ConnContext, protocol: 'h1' | 'h2', authority: string): BalancedTarget | undefined {
    const d = this.o.discovery!;
    let t = ctx.balanced?.authority === authority ? ctx.balanced.target : undefined;
    if (t === undefined || t.service.dropped || t.alternate?.dropped === true || t.protocol !== protocol) {
      // The connection's target service, dropped as idle (nothing marked it used), is asked for again:
      // a dropped service's endpoints are frozen, no update reaches them any more.
      if (ctx.service?.dropped === true) ctx.service = d.service(ctx.targetAddr);
      const service = d.service(authorityKey(authority, ctx));
      const alternate = ctx.service !== undefined && ctx.service !== service ? ctx.service : undefined;
      t = { service, alternate, origin: this.originOf(ctx), protocol };
      ctx.balanced = { authority, target: t };
    }
    const svc = t.service;
    svc.used = d.epoch;
    if (t.alternate !== undefined) t.alternate.used = d.epoch;
    if (svc.usable || !svc.settled || t.alternate?.usable === true) return t;
    return undefined;
  }

  /** The connection's original destination as an endpoint nobody balances over. */
  originOf(ctx: ConnContext): Endpoint {
    return (ctx.origin ??= new Endpoint(ctx.target, ctx.targetAddr, ctx.peerIdentity, this.o.upstreams, undefined, 0));
  }

  /**
   * Where a request goes, decided from the connection (direction, meshed peer) and its head.
   * Made once per connection (twice for a peer's h2: HTTP/1 restored or h2 as is); the
   * connection to use is still chosen per request, when the dispatcher is asked.
   */
  upstreamFor(ctx: ConnContext, protocol: 'h1' | 'h2', head: RequestHead): Upstream {
    const ups = this.o.upstreams;
    const peer = ctx.peerIdentity;
    if (protocol === 'h2' && ctx.clientId !== undefined && carriesH1(head)) {
      // h2 from a peer proxy carrying an HTTP/1 request: restored for the app.
      return (ctx.upstreamRestored ??= { dispatcher: new ToUpstream(ups, ctx.target, ctx.targetAddr, 'h1', undefined), conversion: 'mesh-to-h1' });
    }
    let u = ctx.upstream;
    if (u === undefined) {
      if (protocol === 'h1' && peer === undefined) u = { dispatcher: new ToUpstream(ups, ctx.target, ctx.targetAddr, 'h1', undefined), conversion: 'none' };
      else {
        const d = new ToUpstream(ups, ctx.target, ctx.targetAddr, 'h2', peer);
        u = { dispatcher: d, conversion: protocol === 'h1' ? 'h1-to-mesh' : 'none', retry: () => d };
      }
      ctx.upstream = u;
    }
    return u;
  }

  /** HTTP/1 on `client` (the accepted socket, or the decrypted stream of a peer proxy's mTLS). */
  serveH1(client: Socket, ctx: ConnContext, acceptedAt?: number): void {
    const o = this.o;
    // The first head's time counts from accept (detection included), as HAProxy's `timeout http-request`.
    const headTimeoutMs = acceptedAt === undefined ? o.headTimeoutMs : Math.max(1, o.headTimeoutMs - (performance.now() - acceptedAt));
    const conn = new H1ServerConnection(client, new ConnHandler(ctx, 'h1', this), {
      headTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      ...(o.deadlines ? { deadlines: o.deadlines } : {}),
      reset: resetAndDestroy,
      onTunnel: (head, socket, rest) => this.#tunnel(head, socket, rest, ctx),
      onProtocolError: (err: ProxyError, status: number) => {
        o.metrics.protocolError(ctx.direction, err.code);
        if (o.log.enabled('debug')) o.log.debug('bad HTTP/1 request', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, status, code: err.code, reason: err.message });
      },
    });
    this.#track(conn, client);
  }

  /** h2 on `client`: from an app (h2c), or from a peer proxy over mTLS. */
  serveH2(client: Socket, ctx: ConnContext): void {
    const o = this.o;
    const conn = new H2ServerConnection(client, new ConnHandler(ctx, 'h2', this), {
      peer: ctx.clientId !== undefined ? 'mesh' : 'app',
      idleTimeoutMs: o.idleTimeoutMs,
      onAbuse: (code, detail) => {
        o.metrics.protocolError(ctx.direction, code);
        o.log.warn('h2 connection closed for abuse', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code, reason: detail });
      },
    });
    // Detection leaves the socket paused, with the preface put back.
    client.resume();
    this.#track(conn, client);
  }

  /** Upgrade and CONNECT: the request head is replayed upstream, then bytes flow raw. */
  #tunnel(head: RequestHead, socket: Socket, rest: Buffer, ctx: ConnContext): void {
    const route = routeOf(this.o.metrics, ctx, authorityOf(head));
    route.request();
    if (rest.length > 0) socket.unshift(rest);
    let text = `${head.method} ${head.target} HTTP/1.${head.version === 10 ? 0 : 1}\r\n`;
    for (let i = 0; i < head.headers.length; i += 2) text += `${head.headers[i]}: ${head.headers[i + 1]}\r\n`;
    const prefix = Buffer.from(`${text}\r\n`, 'latin1');
    // With discovery, the tunnel goes to an endpoint of the connection's target, as an opaque stream would.
    const svc = ctx.peerIdentity === undefined ? ctx.service : undefined;
    const ep = svc !== undefined && svc.usable ? svc.balancer.pick(performance.now()) : undefined;
    const target = ep?.target ?? ctx.target;
    const peer = ep !== undefined ? ep.identity : ctx.peerIdentity;
    const dial = peer !== undefined ? { dial: () => this.o.upstreams.dialMeshed(target, peer, 'http1') } : {};
    forwardOpaque(socket, target, { connectTimeoutMs: this.o.connectTimeoutMs, prefix, ...dial }).then((r) => {
      // The response status went by as raw bytes; 101 is what a completed upgrade means.
      route.responseEnd(r.error === undefined ? 101 : 502, undefined, r.error);
    });
  }
}

export { formatAddr };
