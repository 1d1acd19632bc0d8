// mesh-proxy's data path, composed:
//   accept (inbound 4143 / outbound 4140)
//     → original destination (target.ts)
//   outbound: destination meshed? (transport/destinations.ts: its proxy's identity)
//     → opaque port? forward TCP at once (opaque.ts)
//     → detect the protocol on the first bytes (detect/)
//     → HTTP stage (forward/http.ts: our HTTP/1 or h2 codec, one forwarder,
//       upstreams from connect/) | tls or unknown: opaque TCP
//     meshed: all of it inside mTLS to the peer proxy (transport/tls.ts), HTTP/1
//     carried as HTTP/2 (message/h1-over-h2.ts), opaque bytes after a connection header
//   inbound: a ClientHello naming our identity → terminate mTLS, read the
//     connection header (transport/header.ts) → the protocol it names, no detection;
//     anything else → detect as above (refused on a port that requires identity)
// plus the admin port (admin.ts) serving metrics and probes.
import type { Server, Socket } from 'node:net';
import { startAdmin } from './admin.js';
import type { ProxyConfig } from './config.js';
import { bindContext, formatAddr, type ConnContext } from './context.js';
import { detect, type Detected } from './detect/index.js';
import { Upstreams } from './connect/upstreams.js';
import { FdBudget } from './fdlimit.js';
import { Forwarder } from './forward/forwarder.js';
import { HttpStage } from './forward/http.js';
import { H1Pool } from './h1/index.js';
import type { IdentityManager } from './identity/index.js';
import { listenAll } from './listener.js';
import type { Log } from './log.js';
import { ProxyMetrics, type TlsLabels } from './metrics.js';
import { forwardOpaque } from './opaque.js';
import { originalTarget, plainAddress, TargetError, type Direction } from './target.js';
import { readHeader, type SessionProtocol } from './transport/header.js';
import { MeshTls, resetAndDestroy, TRANSPORT_ALPN } from './transport/tls.js';
import type { SocketAddress } from '../native/index.js';

export interface RunningProxy {
  servers: Server[];
  admin: Server;
  metrics: ProxyMetrics;
  /** The workload certificate, when MESH_PROXY_IDENTITY_URL is set. */
  identity: IdentityManager | undefined;
  /** Stops accepting, lets open connections finish for up to graceMs, then resets the rest. */
  close(graceMs: number): Promise<void>;
}

const ignore = (): void => {};

/** How a connection is secured, in the labels Linkerd uses. */
function tlsLabels(direction: Direction, d: Detected | undefined, identityOn: boolean, peer: string | undefined): TlsLabels {
  if (peer !== undefined) return { tls: 'true', server_id: peer };
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  if (!identityOn) return { tls: 'no_identity', no_tls_reason: 'disabled' };
  return { tls: 'no_identity', no_tls_reason: direction === 'inbound' ? 'not_provided_by_remote' : 'not_provided_by_service_discovery' };
}

/** Inbound on an opaque port still looks for a peer proxy's ClientHello, which comes at once; not for long. */
const OPAQUE_TLS_DETECT_MS = 1000;

export async function startProxy(config: ProxyConfig, log: Log, metrics = new ProxyMetrics()): Promise<RunningProxy> {
  const open = new Set<Socket>();
  let ready = false;
  // Certify while the listeners come up; /ready waits for the first certificate.
  // Loaded only when identity is on: the certificate code (pkijs) costs ~10 MB of RSS.
  const identity = config.identity === undefined ? undefined : (await import('./identity/index.js')).startIdentity(config.identity, { log, metrics });
  const meshTls = config.identity === undefined ? undefined : new MeshTls(config.identity.name, config.identity.trustAnchorsPem, config.detectTimeoutMs);
  if (identity && meshTls) {
    identity.on('certified', (cert) => meshTls.update(cert));
    const held = identity.current();
    if (held) meshTls.update(held);
  }
  // Descriptors: the soft limit raised to the hard one, and a reserve kept so
  // that at exhaustion new clients are refused at once, not accepted and reset.
  const fds = new FdBudget();
  const limit = fds.raise();
  log.info('descriptor limit', { soft: limit.soft, hard: limit.hard, reserve: limit.reserve });
  const out = config.connectTimeoutOutboundMs;
  const h1Pool = (dial: () => Promise<Socket>): H1Pool => new H1Pool({ dial, reset: resetAndDestroy });
  const upstreamsOut = new Upstreams({ connectTimeoutMs: out, log, h1Pool, ...(meshTls ? { tls: meshTls } : {}) });
  const upstreamsIn = new Upstreams({ connectTimeoutMs: config.connectTimeoutInboundMs, log, h1Pool });
  const forwarder = new Forwarder({ log });
  const stage = (upstreams: Upstreams, connectTimeoutMs: number): HttpStage =>
    new HttpStage({ log, metrics, forwarder, upstreams, connectTimeoutMs, headTimeoutMs: config.headTimeoutMs, idleTimeoutMs: config.idleTimeoutMs });
  const httpOut = stage(upstreamsOut, out);
  const httpIn = stage(upstreamsIn, config.connectTimeoutInboundMs);
  const dialMeshed = (ctx: ConnContext, protocol: SessionProtocol): Promise<Socket> => upstreamsOut.dialMeshed(ctx.target, ctx.peerIdentity!, protocol);

  const closed = (socket: Socket, ctx: ConnContext, protocol: string, error: string | undefined): void => {
    ctx.metrics.close(socket.bytesRead, socket.bytesWritten, error);
    if (log.enabled('debug')) {
      const peer = ctx.peerIdentity !== undefined ? { server_id: ctx.peerIdentity } : ctx.clientId !== undefined ? { client_id: ctx.clientId } : {};
      log.debug('closed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, tx: socket.bytesRead, rx: socket.bytesWritten, protocol, tls: ctx.metrics.labels.tls, ...peer, error });
    }
  };

  // Opaque streams are accounted when the forwarder is done with both sides,
  // so a failed connect or a reset is counted with its reason. `client` is what
  // bytes are read from (the decrypted stream, once mTLS is terminated); `socket`
  // is the accepted TCP connection the accounting is about.
  const opaque = (socket: Socket, client: Socket, ctx: ConnContext, protocol: string, connectTimeoutMs: number): void => {
    const meshed = ctx.peerIdentity !== undefined ? { dial: () => dialMeshed(ctx, 'opaque') } : {};
    forwardOpaque(client, ctx.target, { connectTimeoutMs, ...meshed }).then((r) => {
      if (r.error !== undefined) log.info('forward failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: r.error, reason: r.detail });
      closed(socket, ctx, protocol, r.error);
    });
  };

  /** Hands a stream (plain, or decrypted) to the server for its protocol. */
  const serve = (socket: Socket, client: Socket, ctx: ConnContext, protocol: 'http1' | 'h2'): void => {
    // A client gone during detection is counted as opened and closed at once.
    if (socket.destroyed) return closed(socket, ctx, protocol, 'MESH_CLIENT_CLOSED');
    socket.once('close', () => closed(socket, ctx, protocol, undefined));
    const http = ctx.direction === 'inbound' ? httpIn : httpOut;
    if (protocol === 'http1') http.serveH1(client, ctx);
    else http.serveH2(client, ctx);
  };

  const refuse = (socket: Socket, ctx: ConnContext, protocol: string, code: string, reason: string): void => {
    log.warn('connection refused', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code, reason });
    if (!socket.destroyed) resetAndDestroy(socket);
    closed(socket, ctx, protocol, code);
  };

  /** Inbound mTLS from a peer proxy: terminate, read the connection header, serve what it names. */
  const terminate = (socket: Socket, target: SocketAddress, src: string, begin: (labels: TlsLabels, dst?: SocketAddress) => ConnContext): void => {
    meshTls!.terminate(socket).then(async (t) => {
      if (t.kind === 'refused') return refuse(socket, begin({ tls: 'true' }), 'tls', t.code, t.reason);
      const secured = t.socket;
      secured.on('error', ignore);
      const h = await readHeader(secured, config.detectTimeoutMs);
      if (h.kind !== 'header') {
        resetAndDestroy(secured);
        const why = h.kind === 'invalid' ? h.reason : h.kind === 'timeout' ? 'no connection header in time' : 'closed before the connection header';
        return refuse(socket, begin({ tls: 'true', client_id: t.clientId }), 'tls', 'MESH_TRANSPORT_HEADER', `from ${t.clientId}: ${why}`);
      }
      const ctx = begin({ tls: 'true', client_id: t.clientId }, { ...target, port: h.header.port });
      ctx.clientId = t.clientId;
      bindContext(secured, ctx);
      if (log.enabled('debug')) log.debug('secured', { direction: 'inbound', src, dst: ctx.targetAddr, client_id: t.clientId, protocol: h.header.protocol });
      if (h.header.protocol === 'opaque') return opaque(socket, secured, ctx, 'opaque', config.connectTimeoutInboundMs);
      serve(socket, secured, ctx, h.header.protocol);
    });
  };

  const accept = (direction: Direction, ownPort: number, connectTimeoutMs: number) => (socket: Socket): void => {
    // Errors surface as 'close'; an 'error' without a listener would crash the process.
    socket.on('error', ignore);
    if (!fds.canAccept()) {
      // Refused at once (a FIN, before any byte is read), so the client fails fast
      // and the connections we hold keep their descriptors for their upstreams.
      metrics.acceptRefused(direction, 'fd_reserve');
      socket.destroy();
      return;
    }
    // Two descriptors: the client's, and the upstream connection it most likely needs.
    fds.acquire();
    fds.acquire();
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      fds.release();
      fds.release();
    });
    const src = `${plainAddress(socket.remoteAddress ?? '')}:${socket.remotePort}`;
    let target: SocketAddress;
    try {
      target = originalTarget(socket, direction, config.inboundMode, ownPort);
    } catch (err) {
      const e = err as TargetError;
      log.warn('connection refused: no target', { direction, src, code: e.code, reason: e.message });
      resetAndDestroy(socket);
      return;
    }
    const targetAddr = formatAddr(target);
    // Outbound: is there a mesh proxy at the destination, and which identity must it prove?
    const peer = direction === 'outbound' ? config.meshedDestinations.identityOf(target) : undefined;
    if (log.enabled('debug')) {
      const local = `${plainAddress(socket.localAddress ?? '')}:${socket.localPort}`;
      log.debug('accepted', { direction, src, local, dst: targetAddr, mode: direction === 'inbound' ? config.inboundMode : 'redirect', ...(peer ? { server_id: peer } : {}) });
    }
    const begin = (labels: TlsLabels, dst: SocketAddress = target): ConnContext => {
      const addr = dst === target ? targetAddr : formatAddr(dst);
      const ctx: ConnContext = { direction, target: dst, targetAddr: addr, src, metrics: metrics.connection({ direction, target_addr: addr, ...labels }) };
      if (peer !== undefined) ctx.peerIdentity = peer;
      bindContext(socket, ctx);
      return ctx;
    };
    const identityOn = meshTls !== undefined;
    const opaquePort = config.opaquePorts.has(target.port);

    if (opaquePort && (direction === 'outbound' || !identityOn)) {
      return opaque(socket, socket, begin(tlsLabels(direction, undefined, identityOn, peer)), 'opaque', connectTimeoutMs);
    }
    const timeoutMs = opaquePort ? Math.min(config.detectTimeoutMs, OPAQUE_TLS_DETECT_MS) : config.detectTimeoutMs;
    detect(socket, { timeoutMs, maxBytes: config.detectMaxBytes }).then((d) => {
      if (log.enabled('debug')) log.debug('detected', { direction, src, dst: targetAddr, protocol: d.kind, ...(d.kind === 'opaque' ? { reason: d.reason } : {}) });
      if (direction === 'inbound' && meshTls && d.kind === 'tls' && d.sni === meshTls.identity && d.alpn.includes(TRANSPORT_ALPN)) {
        return terminate(socket, target, src, begin);
      }
      const ctx = begin(tlsLabels(direction, d, identityOn, peer));
      if (direction === 'inbound' && config.requireIdentityPorts.has(target.port)) {
        const what = d.kind === 'tls' ? `TLS for ${d.sni ?? 'no name'}` : d.kind;
        return refuse(socket, ctx, d.kind, 'MESH_IDENTITY_REQUIRED', `port ${target.port} accepts only mTLS from a mesh proxy; got ${what}`);
      }
      if (d.kind === 'tls' || d.kind === 'opaque' || opaquePort) return opaque(socket, socket, ctx, opaquePort ? 'opaque' : d.kind, connectTimeoutMs);
      serve(socket, socket, ctx, d.kind);
    });
  };

  const inboundPort = config.inbound[0]?.port ?? 0;
  const outboundPort = config.outbound[0]?.port ?? 0;
  const servers = [
    ...(await listenAll(config.inbound, accept('inbound', inboundPort, config.connectTimeoutInboundMs), {
      name: 'inbound',
      transparent: config.inboundMode === 'tproxy',
    }, log)),
    ...(await listenAll(config.outbound, accept('outbound', outboundPort, config.connectTimeoutOutboundMs), {
      name: 'outbound',
      transparent: false,
    }, log)),
  ];
  const admin = await startAdmin(config.admin, { metrics, ready: () => ready && (identity?.ready() ?? true) });
  for (const s of [...servers, admin]) {
    const a = s.address();
    if (a && typeof a === 'object') log.info('listening', { addr: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
  }
  if (config.meshedDestinations.size > 0) log.info('meshed destinations', { count: config.meshedDestinations.size });
  ready = true;

  return {
    servers,
    admin,
    metrics,
    identity,
    async close(graceMs: number): Promise<void> {
      ready = false;
      identity?.stop();
      upstreamsOut.drain();
      upstreamsIn.drain();
      await Promise.all([...servers.map((s) => new Promise<void>((r) => s.close(() => r()))), drain(open, graceMs)]);
      await new Promise<void>((r) => admin.close(() => r()));
    },
  };
}

function drain(open: Set<Socket>, graceMs: number): Promise<void> {
  if (open.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const s of open) resetAndDestroy(s);
      resolve();
    }, graceMs);
    const check = (): void => {
      if (open.size > 0) return;
      clearTimeout(timer);
      resolve();
    };
    for (const s of open) s.once('close', () => queueMicrotask(check));
  });
}
