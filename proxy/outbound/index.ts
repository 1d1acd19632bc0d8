// The outbound stack: what the app in this pod dials, intercepted on 4140.
//   accept (descriptor budget) → original destination
//     → meshed? (the identity its proxy must prove; decided once, here)
//     → opaque port: TCP at once (inside mTLS when meshed)
//     → detect on the first bytes (a client quiet for the server-first window
//       gets its upstream opened; a server speaking first makes it opaque at once)
//       → HTTP/1 | h2: the HTTP stage (HTTP/1 pooled, or carried as h2 on the
//       mTLS connection to the peer proxy)
//       | TLS, unknown or server-first: opaque TCP (on the upstream opened early, if any)
import type { Socket } from 'node:net';
import type { ProxyConfig } from '../config.js';
import type { Connections } from '../connections.js';
import type { Detected } from '../detect/index.js';
import type { ServerFirstDetector } from '../detect/server-first.js';
import type { HttpStage } from '../forward/http.js';
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
}

/** How an outbound connection is secured, in the labels Linkerd uses. */
export function tlsLabels(d: Detected | undefined, identityOn: boolean, peer: string | undefined): TlsLabels {
  if (peer !== undefined) return { tls: 'true', server_id: peer };
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  if (!identityOn) return { tls: 'no_identity', no_tls_reason: 'disabled' };
  return { tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery' };
}

export function outboundStack(d: OutboundDeps): (socket: Socket) => void {
  const { config, log, conns, http, identityOn, detector } = d;
  const ownPort = config.outbound[0]?.port ?? 0;
  const timeout = config.connectTimeoutOutboundMs;
  const peerOf = config.meshedDestinations.identityOf.bind(config.meshedDestinations);
  // Apps that dial this listener themselves (HTTP_PROXY / HTTPS_PROXY, no interception).
  const explicit = explicitProxy({
    log, metrics: d.metrics, conns, http, peerOf,
    tlsLabels: (peer) => tlsLabels(undefined, identityOn, peer),
    headTimeoutMs: config.headTimeoutMs, maxHeadBytes: config.detectMaxBytes, connectTimeoutMs: timeout, ownPort,
  });

  return (socket: Socket): void => {
    const a = conns.accept(socket, 'outbound', ownPort, tlsLabels(undefined, identityOn, undefined), peerOf, explicit);
    if (a === undefined) return;
    // Databases and other server-first protocols: no waiting for a first byte.
    if (config.opaquePorts.has(a.target.port)) {
      detector.byPort();
      return conns.opaque(socket, socket, conns.begin(a, tlsLabels(undefined, identityOn, a.peer)), 'opaque', timeout);
    }
    detector.run(socket, a.at, a.targetAddr, () => conns.dialEarly(a, timeout)).then((fb) => {
      const det = fb.det;
      if (log.enabled('debug')) log.debug('detected', { direction: 'outbound', src: a.src, dst: a.targetAddr, protocol: det.kind, ...(det.kind === 'opaque' ? { reason: det.reason } : {}), ...(fb.early ? { upstream: 'early' } : {}) });
      const ctx = conns.begin(a, tlsLabels(det, identityOn, a.peer));
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
}
