// What the proxy knows about an accepted connection, carried to the protocol
// servers (http, http2) that take the socket over. A WeakMap, not a property
// on the socket, so nothing outlives the connection.
import type { Socket } from 'node:net';
import type { SocketAddress } from '../native/index.js';
import type { Endpoint } from './balance/endpoint.js';
import type { Service } from './discovery/service.js';
import type { BalancedTarget, Upstream } from './forward/forwarder.js';
import type { ConnMetrics, ProxyMetrics, RouteMetrics } from './metrics.js';
import type { Direction } from './target.js';

export interface ConnContext {
  direction: Direction;
  target: SocketAddress;
  /** "10.0.0.7:8080" or "[fd00::7]:8080", as metrics and logs show it. */
  targetAddr: string;
  /** "198.18.0.2:51234": the client's address as seen by this proxy. */
  src: string;
  metrics: ConnMetrics;
  /** Outbound to a meshed destination: the identity its proxy must prove; traffic goes over mTLS. */
  peerIdentity?: string;
  /** Inbound over mTLS: the client proxy's verified identity. */
  clientId?: string;
  /** The last route used on this connection: most connections only ever see one authority. */
  route?: { authority: string; metrics: RouteMetrics };
  /** Outbound with discovery: what discovery says of the original destination (a virtual IP's service, a pod). */
  service?: Service;
  /** The original destination as an endpoint, made on first need. */
  origin?: Endpoint;
  /** The last balanced target used on this connection, by the authority it was found for. */
  balanced?: { authority: string; target: BalancedTarget };
  /** Where this connection's requests go (proxy/forward/http.ts), made on the first request. */
  upstream?: Upstream;
  /** Inbound from a peer proxy: where its requests carrying HTTP/1 go (restored for the app). */
  upstreamRestored?: Upstream;
}

const contexts = new WeakMap<Socket, ConnContext>();

export function bindContext(socket: Socket, ctx: ConnContext): void {
  contexts.set(socket, ctx);
}

export function contextOf(socket: Socket): ConnContext | undefined {
  return contexts.get(socket);
}

export function routeOf(metrics: ProxyMetrics, ctx: ConnContext, authority: string): RouteMetrics {
  if (ctx.route?.authority === authority) return ctx.route.metrics;
  const r = metrics.route(ctx.metrics, authority);
  ctx.route = { authority, metrics: r };
  return r;
}

export function formatAddr(a: SocketAddress): string {
  return a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
