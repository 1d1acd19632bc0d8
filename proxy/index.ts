// mesh-proxy's data path, composed:
//   accept (inbound 4143 / outbound 4140) → original destination → forward.
// Detection, HTTP and identity stack on top of this in later layers.
import type { Server, Socket } from 'node:net';
import type { ProxyConfig } from './config.js';
import { listenAll } from './listener.js';
import type { Log } from './log.js';
import { forwardOpaque } from './opaque.js';
import { originalTarget, plainAddress, TargetError, type Direction } from './target.js';

export interface RunningProxy {
  servers: Server[];
  /** Stops accepting, waits up to graceMs for open connections, then resets the rest. */
  close(graceMs: number): Promise<void>;
}

export async function startProxy(config: ProxyConfig, log: Log): Promise<RunningProxy> {
  const open = new Set<Socket>();

  const accept = (direction: Direction, ownPort: number, connectTimeoutMs: number) => (socket: Socket): void => {
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
    const dst = `${target.family === 6 ? `[${target.address}]` : target.address}:${target.port}`;
    if (log.enabled('debug')) {
      const local = `${plainAddress(socket.localAddress ?? '')}:${socket.localPort}`;
      log.debug('accepted', { direction, src, local, dst, mode: direction === 'inbound' ? config.inboundMode : 'redirect' });
    }
    forwardOpaque(socket, target, { connectTimeoutMs }).then((r) => {
      if (r.error !== undefined) log.info('forward failed', { direction, src, dst, code: r.error, reason: r.detail });
      else if (log.enabled('debug')) log.debug('closed', { direction, src, dst, tx: r.bytesFromClient, rx: r.bytesFromServer });
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
  for (const s of servers) {
    const a = s.address();
    if (a && typeof a === 'object') log.info('listening', { addr: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
  }

  return {
    servers,
    async close(graceMs: number): Promise<void> {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))).concat(drain(open, graceMs)));
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
