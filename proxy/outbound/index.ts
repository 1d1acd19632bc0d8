// The outbound stack: what the app in this pod dials, intercepted on 4140.
//   accept (descriptor budget) → original destination
//     → meshed by override? (MESH_PROXY_MESHED_DESTINATIONS: the identity its
//       proxy must prove, decided here, no discovery)
//     → else discovery of the original destination (a virtual IP answers its
//       service, a pod's address that pod; the first connection to a new one
//       waits a bounded time for the answer)
//     → opaque port (configured, or the service's): TCP at once, to an
//       endpoint chosen per connection (inside mTLS when it is meshed)
//     → detect on the first bytes (a client quiet for the server-first window
//       gets its upstream opened; a server speaking first makes it opaque at once)
//       → HTTP/1 | h2: the HTTP stage (each request balanced over its
//         authority's endpoints, each spoken to as it is: mTLS h2 to a meshed
//         one's proxy, plain otherwise)
//       | TLS, unknown or server-first: opaque TCP, as above (on the upstream opened early, if any)
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import { formatAddr } from '../context.js';
import type { ProxyConfig } from '../config.js';
import type { Accepted, Connections } from '../connections.js';
import type { ConnContext } from '../context.js';
import type { Detected } from '../detect/index.js';
import type { ServerFirstDetector } from '../detect/server-first.js';
import type { Service } from '../discovery/service.js';
import type { DiscoveryLookup, HttpStage } from '../forward/http.js';
import type { Log } from '../log.js';
import type { ProxyMetrics, TlsLabels } from '../metrics.js';
import { explicitProxy } from './explicit.js';

export interface OutboundDeps {
  config: ProxyConfig;
  log: Log;
  conns: Connections;
  http: HttpStage;
  /** Identity is on: this proxy holds (or is getting) a workload certificate. */
  identityOn: boolean;
  /** Detection with the server-speaks-first window, for this direction. */
  detector: ServerFirstDetector;
  metrics: ProxyMetrics;
  /** The destination service's answers; undefined without MESH_PROXY_DESTINATION_URL. */
  discovery?: DiscoveryLookup;
}

/**
 * For the explicit proxy, which dials its target itself: the identity of the
 * one endpoint discovery has at exactly that address (a pod). A service's
 * virtual address is reached as it is, in plaintext (its endpoints are
 * balanced only for intercepted connections).
 */
function podIdentity(discovery: DiscoveryLookup, key: string, t: SocketAddress): Promise<string | undefined> {
  const svc = discovery.service(key);
  svc.used = discovery.epoch;
  return new Promise((resolve) =>
    svc.wait({
      resolved: () => {
        const eps = svc.usable ? svc.balancer.endpoints : [];
        const only = eps.length === 1 ? eps[0]! : undefined;
        resolve(only !== undefined && only.target.address === t.address && only.target.port === t.port ? only.identity : undefined);
      },
    }),
  );
}

/** How an outbound connection is secured, in the labels Linkerd uses. */
export function tlsLabels(d: Detected | undefined, identityOn: boolean, peer: string | undefined): TlsLabels {
  if (peer !== undefined) return { tls: 'true', server_id: peer };
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  if (!identityOn) return { tls: 'no_identity', no_tls_reason: 'disabled' };
  return { tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery' };
}

export function outboundStack(d: OutboundDeps): (socket: Socket) => void {
  const { config, log, conns, http, identityOn, detector, discovery } = d;
  const ownPort = config.outbound[0]?.port ?? 0;
  const timeout = config.connectTimeoutOutboundMs;
  const peerOf = config.meshedDestinations.identityOf.bind(config.meshedDestinations);
  // Apps that dial this listener themselves (HTTP_PROXY / HTTPS_PROXY, no interception).
  const explicit = explicitProxy({
    log, metrics: d.metrics, conns, http, peerOf,
    tlsLabels: (peer) => tlsLabels(undefined, identityOn, peer),
    headTimeoutMs: config.headTimeoutMs, maxHeadBytes: config.detectMaxBytes, connectTimeoutMs: timeout, ownPort,
    ...(discovery ? { discoveredPeer: (t: SocketAddress) => podIdentity(discovery, formatAddr(t), t) } : {}),
  });

  /** The connection's target is known to discovery (or not): decide how it is carried. */
  const proceed = (socket: Socket, a: Accepted, svc: Service | undefined): void => {
    // The identity the connection is labelled with: the override's, else the one every endpoint of its target proves.
    const peer = a.peer ?? (svc?.usable ? svc.identity : undefined);
    const begin = (det: Detected | undefined): ConnContext => {
      const ctx = conns.begin(a, tlsLabels(det, identityOn, peer));
      if (svc !== undefined) ctx.service = svc;
      return ctx;
    };
    if (socket.destroyed) return conns.closed(socket, begin(undefined), 'unknown', 'MESH_CLIENT_CLOSED');
    // Databases and other server-first protocols: no waiting for a first byte.
    if (config.opaquePorts.has(a.target.port) || svc?.settings?.opaque === true) {
      detector.byPort();
      return conns.opaque(socket, socket, begin(undefined), 'opaque', timeout);
    }
    // An upstream opened early (the client is quiet) goes where an opaque stream would: an endpoint of the target's service.
    const early = (): Promise<Socket> => {
      const ep = svc?.usable ? svc.balancer.pick(performance.now()) : undefined;
      return ep === undefined ? conns.dialEarly(a, timeout) : conns.dial(ep.target, ep.identity, 'unknown', timeout);
    };
    detector.run(socket, a.at, a.targetAddr, early).then((fb) => {
      const det = fb.det;
      if (log.enabled('debug')) log.debug('detected', { direction: 'outbound', src: a.src, dst: a.targetAddr, protocol: det.kind, ...(det.kind === 'opaque' ? { reason: det.reason } : {}), ...(fb.early ? { upstream: 'early' } : {}) });
      const ctx = begin(det);
      switch (det.kind) {
        case 'http1':
        case 'h2':
          return conns.serve(socket, socket, ctx, det.kind, http, a.at);
        case 'tls':
        case 'opaque':
          return conns.opaque(socket, socket, ctx, det.kind, timeout, fb.use());
      }
    });
  };

  return (socket: Socket): void => {
    const a = conns.accept(socket, 'outbound', ownPort, tlsLabels(undefined, identityOn, undefined), peerOf, explicit);
    if (a === undefined) return;
    // The override names this destination's proxy: no discovery for it.
    if (discovery === undefined || a.peer !== undefined) return proceed(socket, a, undefined);
    const svc = discovery.service(a.targetAddr);
    svc.used = discovery.epoch;
    svc.wait({ resolved: () => proceed(socket, a, svc) });
  };
}
