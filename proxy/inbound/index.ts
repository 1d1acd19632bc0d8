// The inbound stack: connections to this pod's app, intercepted on 4143.
//   accept (descriptor budget) → original destination
//     → opaque port without identity: TCP at once
//     → detect on the first bytes (briefly on opaque ports: only a peer
//       proxy's ClientHello, which comes at once, is looked for)
//     → a ClientHello naming our identity with the mesh ALPN: terminate mTLS,
//       read the connection header, serve the protocol it names (no second
//       detection): h2 (HTTP/1 restored for the app) | http1 (tunnels) | opaque
//       | tunnel (opaque connections as CONNECT streams of one session, each
//       dialled to the app's port it names) | unknown (the client proxy opened
//       the session before its client spoke): the app is dialled at once and
//       detection races its first bytes
//     → otherwise: refused on a port that requires identity; else HTTP/1 | h2
//       through the HTTP stage, TLS, unknown or server-first as opaque TCP
//       (a plaintext client quiet for the server-first window has the app
//       dialled; if the app speaks first, its bytes flow at once)
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import type { ProxyConfig } from '../config.js';
import type { Accepted, Connections } from '../connections.js';
import { bindContext, formatAddr, type ConnContext } from '../context.js';
import type { Detected } from '../detect/index.js';
import { ServerFirstDetector } from '../detect/server-first.js';
import { ServerFirstMemory } from '../detect/learned.js';
import { dialTcp } from '../opaque.js';
import type { HttpStage } from '../forward/http.js';
import type { Log } from '../log.js';
import type { TlsLabels } from '../metrics.js';
import { readHeader } from '../transport/header.js';
import { sealedOf } from '../transport/sealed.js';
import { resetAndDestroy, TRANSPORT_ALPN, type MeshTls } from '../transport/tls.js';

export interface InboundDeps {
  config: ProxyConfig;
  log: Log;
  conns: Connections;
  http: HttpStage;
  /** Mutual TLS with peer proxies; undefined when identity is off. */
  meshTls: MeshTls | undefined;
  /** Detection with the server-speaks-first window, for this direction. */
  detector: ServerFirstDetector;
}

/** Inbound on an opaque port still looks for a peer proxy's ClientHello, which comes at once; not for long. */
const OPAQUE_TLS_DETECT_MS = 1000;

/**
 * With identity on, a quiet plaintext client may be a peer proxy whose
 * ClientHello is late (a busy event loop): if the app's bytes were sent to it
 * before, its handshake would fail. So toward plaintext clients the window is
 * this long, and nothing learned skips it. Meshed clients are not affected:
 * their proxy says "unknown" in the connection header and the app is dialled
 * at once.
 */
const PEER_HELLO_GRACE_MS = 1000;

const ignore = (): void => {};
const noPeer = (): undefined => undefined;

/** How an inbound connection that is not a peer proxy's mTLS is secured. */
function tlsLabels(d: Detected | undefined, identityOn: boolean): TlsLabels {
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  if (!identityOn) return { tls: 'no_identity', no_tls_reason: 'disabled' };
  return { tls: 'no_identity', no_tls_reason: 'not_provided_by_remote' };
}

export function inboundStack(d: InboundDeps): (socket: Socket) => void {
  const { config, log, conns, http, meshTls, detector } = d;
  const ownPort = config.inbound[0]?.port ?? 0;
  const proxyPorts: ReadonlySet<number> = new Set([ownPort, ...config.outbound.map((l) => l.port), config.admin.port, config.control.port]);
  const timeout = config.connectTimeoutInboundMs;
  const identityOn = meshTls !== undefined;
  const plaintext = !identityOn || !(detector.o.windowMs > 0)
    ? detector
    : new ServerFirstDetector({ ...detector.o, windowMs: Math.max(detector.o.windowMs, PEER_HELLO_GRACE_MS), memory: new ServerFirstMemory(0, 0) });
  const onOpaquePort = new ServerFirstDetector({ ...plaintext.o, detect: { ...plaintext.o.detect, timeoutMs: Math.min(config.detectTimeoutMs, OPAQUE_TLS_DETECT_MS) } });

  /** A peer proxy's mTLS: terminate, read the connection header, serve what it names. */
  const terminate = (a: Accepted, tls: MeshTls): void => {
    const { socket, target } = a;
    tls.terminate(socket).then(async (t) => {
      if (t.kind === 'refused') return conns.refuse(socket, conns.begin(a, { tls: 'true' }), 'tls', t.code, t.reason);
      const secured = t.socket;
      secured.on('error', ignore);
      const h = await readHeader(secured, config.detectTimeoutMs);
      // A sealed session (SESSION_ALPN) promised HTTP/2: only its HTTP/2 reader opens its records.
      const sealedWrong = h.kind === 'header' && sealedOf(secured) !== undefined && h.header.protocol !== 'h2' && h.header.protocol !== 'tunnel';
      if (h.kind !== 'header' || sealedWrong) {
        resetAndDestroy(secured);
        const why = h.kind === 'invalid' ? h.reason : h.kind === 'timeout' ? 'no connection header in time'
          : h.kind === 'closed' ? 'closed before the connection header' : `protocol ${h.header.protocol} on a session negotiated for HTTP/2`;
        return conns.refuse(socket, conns.begin(a, { tls: 'true', client_id: t.clientId }), 'tls', 'MESH_TRANSPORT_HEADER', `from ${t.clientId}: ${why}`);
      }
      // The header names the port the client dialled; the app listens there.
      const dst: SocketAddress = { ...target, port: h.header.port };
      if (h.header.protocol === 'tunnel') {
        // Connections as streams, each to the port it names: they are what is counted, not the session.
        if (log.enabled('debug')) log.debug('secured', { direction: 'inbound', src: a.src, dst: formatAddr(dst), client_id: t.clientId, protocol: 'tunnel' });
        return conns.tunnels(a, secured, t.clientId, timeout, proxyPorts);
      }
      const ctx = conns.begin(a, { tls: 'true', client_id: t.clientId }, dst);
      ctx.clientId = t.clientId;
      bindContext(secured, ctx);
      if (log.enabled('debug')) log.debug('secured', { direction: 'inbound', src: a.src, dst: ctx.targetAddr, client_id: t.clientId, protocol: h.header.protocol });
      if (h.header.protocol === 'opaque') return conns.opaque(socket, secured, ctx, 'opaque', timeout);
      if (h.header.protocol === 'unknown') return raceApp(socket, secured, ctx);
      conns.serve(socket, secured, ctx, h.header.protocol, http);
    });
  };

  /**
   * The client proxy waited its window and its client is still quiet: the
   * app is dialled at once (a second window would only add to the stall),
   * and whichever side speaks first decides.
   */
  const raceApp = (socket: Socket, secured: Socket, ctx: ConnContext): void => {
    const dst = ctx.target;
    detector.run(secured, performance.now(), ctx.targetAddr, () => dialTcp(dst, timeout), 'at-once').then((fb) => {
      const det = fb.det;
      if (log.enabled('debug')) log.debug('detected', { direction: 'inbound', src: ctx.src, dst: ctx.targetAddr, protocol: det.kind, ...(det.kind === 'opaque' ? { reason: det.reason } : {}), client_id: ctx.clientId });
      if (det.kind === 'http1' || det.kind === 'h2') return conns.serve(socket, secured, ctx, det.kind, http);
      conns.opaque(socket, secured, ctx, det.kind, timeout, fb.use());
    });
  };

  return (socket: Socket): void => {
    const a = conns.accept(socket, 'inbound', ownPort, tlsLabels(undefined, identityOn), noPeer);
    if (a === undefined) return;
    const opaquePort = config.opaquePorts.has(a.target.port);
    if (opaquePort && !identityOn) {
      detector.byPort();
      return conns.opaque(socket, socket, conns.begin(a, tlsLabels(undefined, false)), 'opaque', timeout);
    }
    // No early upstream where the app must not be reached without identity,
    // nor on an opaque port (only a ClientHello is looked for there).
    const early = config.requireIdentityPorts.has(a.target.port) || opaquePort ? 'never' : 'window';
    (opaquePort ? onOpaquePort : plaintext).run(socket, a.at, a.targetAddr, () => dialTcp(a.target, timeout), early).then((fb) => {
      const det = fb.det;
      if (log.enabled('debug')) log.debug('detected', { direction: 'inbound', src: a.src, dst: a.targetAddr, protocol: det.kind, ...(det.kind === 'opaque' ? { reason: det.reason } : {}), ...(fb.early ? { upstream: 'early' } : {}) });
      if (meshTls && det.kind === 'tls' && det.sni === meshTls.identity && det.alpn.includes(TRANSPORT_ALPN)) {
        fb.drop();
        return terminate(a, meshTls);
      }
      const ctx = conns.begin(a, tlsLabels(det, identityOn));
      if (config.requireIdentityPorts.has(a.target.port)) {
        const what = det.kind === 'tls' ? `TLS for ${det.sni ?? 'no name'}` : det.kind;
        return conns.refuse(socket, ctx, det.kind, 'MESH_IDENTITY_REQUIRED', `port ${a.target.port} accepts only mTLS from a mesh proxy; got ${what}`);
      }
      if (det.kind === 'tls' || det.kind === 'opaque' || opaquePort) return conns.opaque(socket, socket, ctx, opaquePort ? 'opaque' : det.kind, timeout, fb.use());
      conns.serve(socket, socket, ctx, det.kind, http, a.at);
    });
  };
}
