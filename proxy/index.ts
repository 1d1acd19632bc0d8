// mesh-proxy's data path, composed:
//   accept (inbound 4143 / outbound 4140)
//     → original destination (target.ts)
//     → opaque port? forward TCP at once (opaque.ts)
//     → detect the protocol on the first bytes (detect/)
//     → http1 (http1.ts) | h2 (h2.ts) | tls or unknown: opaque TCP
// plus the admin port (admin.ts) serving metrics and probes.
import type { Server, Socket } from 'node:net';
import { startAdmin } from './admin.js';
import type { ProxyConfig } from './config.js';
import { bindContext, formatAddr, type ConnContext } from './context.js';
import { detect, type Detected } from './detect/index.js';
import { h2Forwarder } from './h2.js';
import type { IdentityManager } from './identity/index.js';
import { http1Forwarder } from './http1.js';
import { listenAll } from './listener.js';
import type { Log } from './log.js';
import { ProxyMetrics, type TlsLabels } from './metrics.js';
import { forwardOpaque } from './opaque.js';
import { originalTarget, plainAddress, TargetError, type Direction } from './target.js';

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

/** No identity yet: every connection is plaintext, for a stated reason; app TLS passes through. */
function tlsLabels(d: Detected | undefined): TlsLabels {
  if (d?.kind === 'tls') return { tls: 'opaque', ...(d.sni === undefined ? {} : { sni: d.sni }) };
  return { tls: 'no_identity', no_tls_reason: 'disabled' };
}

export async function startProxy(config: ProxyConfig, log: Log, metrics = new ProxyMetrics()): Promise<RunningProxy> {
  const open = new Set<Socket>();
  let ready = false;
  // Certify while the listeners come up; /ready waits for the first certificate.
  // Loaded only when identity is on: the certificate code (pkijs) costs ~10 MB of RSS.
  const identity = config.identity === undefined ? undefined : (await import('./identity/index.js')).startIdentity(config.identity, { log, metrics });
  const http1 = http1Forwarder({ connectTimeoutMs: config.connectTimeoutOutboundMs, metrics, log });
  const http1In = http1Forwarder({ connectTimeoutMs: config.connectTimeoutInboundMs, metrics, log });
  const h2 = h2Forwarder({ connectTimeoutMs: config.connectTimeoutOutboundMs, metrics, log });
  const h2In = h2Forwarder({ connectTimeoutMs: config.connectTimeoutInboundMs, metrics, log });

  const closed = (socket: Socket, ctx: ConnContext, protocol: string, error: string | undefined): void => {
    ctx.metrics.close(socket.bytesRead, socket.bytesWritten, error);
    if (log.enabled('debug')) {
      log.debug('closed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, tx: socket.bytesRead, rx: socket.bytesWritten, protocol, error });
    }
  };

  // Opaque streams are accounted when the forwarder is done with both sides,
  // so a failed connect or a reset is counted with its reason.
  const opaque = (socket: Socket, ctx: ConnContext, protocol: string, connectTimeoutMs: number): void => {
    forwardOpaque(socket, ctx.target, { connectTimeoutMs }).then((r) => {
      if (r.error !== undefined) log.info('forward failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code: r.error, reason: r.detail });
      closed(socket, ctx, protocol, r.error);
    });
  };

  const accept = (direction: Direction, ownPort: number, connectTimeoutMs: number) => (socket: Socket): void => {
    // Errors surface as 'close'; an 'error' without a listener would crash the process.
    socket.on('error', ignore);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    const src = `${plainAddress(socket.remoteAddress ?? '')}:${socket.remotePort}`;
    let target;
    try {
      target = originalTarget(socket, direction, config.inboundMode, ownPort);
    } catch (err) {
      const e = err as TargetError;
      log.warn('connection refused: no target', { direction, src, code: e.code, reason: e.message });
      socket.resetAndDestroy();
      return;
    }
    const targetAddr = formatAddr(target);
    if (log.enabled('debug')) {
      const local = `${plainAddress(socket.localAddress ?? '')}:${socket.localPort}`;
      log.debug('accepted', { direction, src, local, dst: targetAddr, mode: direction === 'inbound' ? config.inboundMode : 'redirect' });
    }
    const begin = (d: Detected | undefined): ConnContext => {
      const ctx: ConnContext = {
        direction,
        target,
        targetAddr,
        src,
        metrics: metrics.connection({ direction, target_addr: targetAddr, ...tlsLabels(d) }),
      };
      bindContext(socket, ctx);
      return ctx;
    };

    if (config.opaquePorts.has(target.port)) return opaque(socket, begin(undefined), 'opaque', connectTimeoutMs);
    detect(socket, { timeoutMs: config.detectTimeoutMs, maxBytes: config.detectMaxBytes }).then((d) => {
      if (log.enabled('debug')) log.debug('detected', { direction, src, dst: targetAddr, protocol: d.kind, ...(d.kind === 'opaque' ? { reason: d.reason } : {}) });
      const ctx = begin(d);
      if (d.kind === 'tls' || d.kind === 'opaque') return opaque(socket, ctx, d.kind, connectTimeoutMs);
      // A client gone during detection is counted as opened and closed at once.
      if (socket.destroyed) return closed(socket, ctx, d.kind, 'MESH_CLIENT_CLOSED');
      socket.once('close', () => closed(socket, ctx, d.kind, undefined));
      switch (d.kind) {
        case 'http1':
          return (direction === 'inbound' ? http1In : http1).accept(socket);
        case 'h2':
          return (direction === 'inbound' ? h2In : h2).accept(socket);
        default: {
          const never: never = d;
          throw new Error(`unhandled detection ${String(never)}`);
        }
      }
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
  ready = true;

  return {
    servers,
    admin,
    metrics,
    identity,
    async close(graceMs: number): Promise<void> {
      ready = false;
      identity?.stop();
      for (const f of [http1, http1In, h2, h2In]) f.drain();
      await Promise.all([...servers.map((s) => new Promise<void>((r) => s.close(() => r()))), drain(open, graceMs)]);
      await new Promise<void>((r) => admin.close(() => r()));
    },
  };
}

function drain(open: Set<Socket>, graceMs: number): Promise<void> {
  if (open.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const s of open) s.resetAndDestroy();
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
