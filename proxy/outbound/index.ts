// The outbound stack: what the app in this pod dials, intercepted on 4140.
//   accept (descriptor budget) → original destination
//     → meshed by override? (MESH_PROXY_MESHED_DESTINATIONS: the identity its
//       proxy must prove, decided here, no discovery)
//     → else discovery of the original destination (a virtual IP answers its
//       service, a pod's address that pod; the first connection to a new one
//       waits a bounded time for the answer)
//     → opaque port (configured, or the service's): TCP at once, to an
//       endpoint chosen per connection (inside mTLS when it is meshed)
//     → detect on the first bytes → HTTP/1 | h2: the HTTP stage (each request
//       balanced over its authority's endpoints, each endpoint spoken to as it
//       is: mTLS h2 to a meshed one's proxy, plain otherwise)
//       | TLS or unknown: opaque TCP, as above
import type { Socket } from 'node:net';
import type { ProxyConfig } from '../config.js';
import type { Accepted, Connections } from '../connections.js';
import type { ConnContext } from '../context.js';
import { detect, type Detected } from '../detect/index.js';
import type { Service } from '../discovery/service.js';
import type { DiscoveryLookup, HttpStage } from '../forward/http.js';
import type { Log } from '../log.js';
import type { TlsLabels } from '../metrics.js';

export interface OutboundDeps {
  config: ProxyConfig;
  log: Log;
  conns: Connections;
  http: HttpStage;
  /** Identity is on: this proxy holds (or is getting) a workload certificate. */
  identityOn: boolean;
  /** The destination service's answers; undefined without MESH_PROXY_DESTINATION_URL. */
  discovery?: DiscoveryLookup;
}

/** How an outbound connection is secured, in the labels Linkerd uses. */
function tlsLabels(d: Detected | undefined, identityOn: boolean, peer: string | undefined): TlsLabels {
  if (peer !== undefined) return { tls: 'true', server_id: peer };
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  if (!identityOn) return { tls: 'no_identity', no_tls_reason: 'disabled' };
  return { tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery' };
}

export function outboundStack(d: OutboundDeps): (socket: Socket) => void {
  const { config, log, conns, http, identityOn, discovery } = d;
  const ownPort = config.outbound[0]?.port ?? 0;
  const timeout = config.connectTimeoutOutboundMs;
  const peerOf = config.meshedDestinations.identityOf.bind(config.meshedDestinations);

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
      return conns.opaque(socket, socket, begin(undefined), 'opaque', timeout);
    }
    detect(socket, { timeoutMs: config.detectTimeoutMs, maxBytes: config.detectMaxBytes, httpTimeoutMs: config.headTimeoutMs }).then((det) => {
      if (log.enabled('debug')) log.debug('detected', { direction: 'outbound', src: a.src, dst: a.targetAddr, protocol: det.kind, ...(det.kind === 'opaque' ? { reason: det.reason } : {}) });
      const ctx = begin(det);
      switch (det.kind) {
        case 'http1':
        case 'h2':
          return conns.serve(socket, socket, ctx, det.kind, http, a.at);
        case 'tls':
        case 'opaque':
          return conns.opaque(socket, socket, ctx, det.kind, timeout);
      }
    });
  };

  return (socket: Socket): void => {
    const a = conns.accept(socket, 'outbound', ownPort, tlsLabels(undefined, identityOn, undefined), peerOf);
    if (a === undefined) return;
    // The override names this destination's proxy: no discovery for it.
    if (discovery === undefined || a.peer !== undefined) return proceed(socket, a, undefined);
    const svc = discovery.service(a.targetAddr);
    svc.used = discovery.epoch;
    svc.wait({ resolved: () => proceed(socket, a, svc) });
  };
}
