// What both stacks do with an accepted connection, apart from deciding: admit
// it (descriptor budget), find its target, count it open from the start (while
// detection runs, under provisional labels), and end it one of three ways —
// served by the HTTP stage, forwarded as opaque TCP, or refused — with its
// close accounted exactly once.
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { trimMemory, type SocketAddress } from '../native/index.js';
import type { InboundMode } from './config.js';
import type { ProxyErrorCode } from './errors.js';
import { bindContext, formatAddr, type ConnContext } from './context.js';
import type { FdBudget } from './fdlimit.js';
import type { HttpStage } from './forward/http.js';
import type { Log } from './log.js';
import type { PendingConnMetrics, ProxyMetrics, TlsLabels } from './metrics.js';
import { dialTcp, forwardOpaque, type ForwardResult } from './opaque.js';
import type { TapHub } from './tap/hub.js';
import { originalTarget, plainAddress, type Direction, type TargetError } from './target.js';
import { resetAndDestroy, retireAtExpiry } from './transport/tls.js';
import type { SessionProtocol } from './transport/header.js';
import { H2ServerConnection } from './h2/index.js';
import type { Dispatcher } from './message/types.js';
import { forwardTunnel, TunnelServer, type TunnelHost, type TunnelledConnection } from './tunnel.js';

const ignore = (): void => {};

/**
 * After this many closes, and no more often than TRIM_EVERY_MS, the C
 * allocator's free pages go back to the kernel: TLS sessions are malloc'd by
 * OpenSSL, and after thousands of mTLS connections close glibc keeps their
 * pages, so RSS stayed at its peak (measured 600 MB → ~200 MB with a trim).
 */
const TRIM_AFTER_CLOSES = 1000;
const TRIM_EVERY_MS = 10_000;

/** An admitted connection with its original destination, before anything is decided. */
export interface Accepted {
  socket: Socket;
  direction: Direction;
  target: SocketAddress;
  targetAddr: string;
  src: string;
  /** Outbound to a meshed destination: the identity its proxy must prove. */
  peer: string | undefined;
  pending: PendingConnMetrics;
  /** performance.now() at accept: a request head's timeout counts from here. */
  at: number;
}

export interface ConnectionsOptions {
  log: Log;
  metrics: ProxyMetrics;
  fds: FdBudget;
  inboundMode: InboundMode;
  /** mTLS to a meshed destination's proxy announcing `protocol` (opaque streams, tunnels). */
  dialMeshed(target: SocketAddress, peer: string, protocol: SessionProtocol): Promise<Socket>;
  /**
   * The tunnel session to a meshed destination's proxy (proxy/tunnel.ts): opaque connections
   * ride it as streams. Absent: each opaque connection gets an mTLS session of its own.
   */
  tunnel?(target: SocketAddress, key: string, peer: string): Dispatcher | undefined;
  /** Live tap: opaque streams show as open/close events to watchers that want them. */
  tap?: TapHub;
}

export class Connections {
  readonly open = new Set<Socket>();
  /** Descriptors each open connection holds in the budget: 2 until it is served as HTTP, then 1. */
  readonly #fdUnits = new WeakMap<Socket, number>();
  #closedSinceTrim = 0;
  #lastTrim = 0;
  #trimTimer: NodeJS.Timeout | undefined;
  /** Tunnel sessions this proxy serves (inbound): told to close on drain. */
  readonly #tunnelSessions = new Set<H2ServerConnection>();
  #draining = false;

  constructor(private readonly o: ConnectionsOptions) {}

  /**
   * Admits a new socket and finds its target; undefined when it was refused
   * (no descriptor to spare, or no original destination).
   */
  accept(
    socket: Socket,
    direction: Direction,
    ownPort: number,
    provisional: TlsLabels,
    peerOf: (t: SocketAddress) => string | undefined,
    /** A client that dialled the proxy itself (no redirect): served this way instead of refused (explicit proxy mode). */
    onDirect?: (socket: Socket, src: string) => void,
  ): Accepted | undefined {
    const { log, metrics, fds } = this.o;
    // Errors surface as 'close'; an 'error' without a listener would crash the process.
    socket.on('error', ignore);
    if (!fds.canAccept()) {
      // Refused at once (a FIN, before any byte is read), so the client fails fast
      // and the connections we hold keep their descriptors for their upstreams.
      metrics.acceptRefused(direction, 'fd_reserve');
      socket.destroy();
      return undefined;
    }
    // Two descriptors: the client's, and the upstream connection it most likely needs
    // (one for HTTP, whose upstreams are pooled and shared: see serve()).
    fds.acquire();
    fds.acquire();
    this.#fdUnits.set(socket, 2);
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      const units = this.#fdUnits.get(socket) ?? 2;
      this.#fdUnits.delete(socket);
      for (let i = 0; i < units; i++) fds.release();
      if (++this.#closedSinceTrim >= TRIM_AFTER_CLOSES && this.#trimTimer === undefined) this.#scheduleTrim();
    });
    const src = `${plainAddress(socket.remoteAddress ?? '')}:${socket.remotePort}`;
    let target: SocketAddress;
    try {
      target = originalTarget(socket, direction, this.o.inboundMode, ownPort);
    } catch (err) {
      const e = err as TargetError;
      // Addressed to our own port (conntrack saw no rewrite), or not tracked at all (no interception in this pod).
      if (onDirect !== undefined && (e.code === 'MESH_TARGET_IS_PROXY' || e.code === 'MESH_NO_ORIGINAL_DST')) return void onDirect(socket, src);
      log.warn('connection refused: no target', { direction, src, code: e.code, reason: e.message });
      resetAndDestroy(socket);
      return undefined;
    }
    return this.adopt(socket, direction, target, src, provisional, peerOf);
  }

  /** An admitted socket whose target is known some other way (the request of an explicit proxy client). */
  adopt(socket: Socket, direction: Direction, target: SocketAddress, src: string, provisional: TlsLabels, peerOf: (t: SocketAddress) => string | undefined): Accepted {
    const { log, metrics } = this.o;
    const targetAddr = formatAddr(target);
    const peer = peerOf(target);
    if (log.enabled('debug')) {
      const local = `${plainAddress(socket.localAddress ?? '')}:${socket.localPort}`;
      log.debug('accepted', { direction, src, local, dst: targetAddr, mode: direction === 'inbound' ? this.o.inboundMode : 'redirect', ...(peer ? { server_id: peer } : {}) });
    }
    const pending = metrics.pending({ direction, target_addr: targetAddr, ...provisional });
    return { socket, direction, target, targetAddr, src, peer, pending, at: performance.now() };
  }

  #scheduleTrim(): void {
    const wait = Math.max(1000, this.#lastTrim + TRIM_EVERY_MS - Date.now());
    this.#trimTimer = setTimeout(() => {
      this.#trimTimer = undefined;
      this.#closedSinceTrim = 0;
      this.#lastTrim = Date.now();
      try {
        trimMemory();
      } catch {
        // No addon (it is loaded at start, so not expected): memory stays as the allocator keeps it.
      }
    }, wait);
    this.#trimTimer.unref();
  }

  /** The connection's context once its TLS labels are known (and its target port, after a connection header). */
  begin(a: Accepted, labels: TlsLabels, dst: SocketAddress = a.target): ConnContext {
    const addr = dst === a.target ? a.targetAddr : formatAddr(dst);
    const ctx: ConnContext = {
      direction: a.direction,
      target: dst,
      targetAddr: addr,
      src: a.src,
      metrics: a.pending.settle(this.o.metrics, { direction: a.direction, target_addr: addr, ...labels }),
    };
    if (a.peer !== undefined) ctx.peerIdentity = a.peer;
    bindContext(a.socket, ctx);
    return ctx;
  }

  closed(socket: Socket, ctx: ConnContext, protocol: string, error: string | undefined): void {
    this.#closedWith(ctx, protocol, socket.bytesRead, socket.bytesWritten, error, undefined);
  }

  /** A connection's close, accounted once: `rx` bytes came from its client, `tx` went to it; `stream`: a tunnel stream's number. */
  #closedWith(ctx: ConnContext, protocol: string, rx: number, tx: number, error: string | undefined, stream: number | undefined): void {
    const { log } = this.o;
    ctx.metrics.close(rx, tx, error);
    if (log.enabled('debug')) {
      const peer = ctx.peerIdentity !== undefined ? { server_id: ctx.peerIdentity } : ctx.clientId !== undefined ? { client_id: ctx.clientId } : {};
      log.debug('closed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, tx: rx, rx: tx, protocol, tls: ctx.metrics.labels.tls, ...peer, ...(stream === undefined ? {} : { stream }), error });
    }
  }

  refuse(socket: Socket, ctx: ConnContext, protocol: string, code: string, reason: string): void {
    this.o.log.warn('connection refused', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, code, reason });
    if (!socket.destroyed) resetAndDestroy(socket);
    this.closed(socket, ctx, protocol, code);
  }

  /**
   * Opaque TCP, accounted when the forwarder is done with both sides, so a
   * failed connect or a reset is counted with its reason. `client` is what
   * bytes are read from (the decrypted stream, once mTLS is terminated);
   * `socket` is the accepted TCP connection the accounting is about.
   */
  opaque(socket: Socket, client: Socket, ctx: ConnContext, protocol: string, connectTimeoutMs: number, upstream?: Promise<Socket>): void {
    // Discovery knows the target: one of its endpoints, chosen per connection (P2C), spoken to as it is (mTLS when meshed).
    // An upstream opened while detecting (server-speaks-first window) was chosen then, and is the one used.
    const svc = ctx.service;
    const ep = upstream === undefined && svc !== undefined && svc.usable ? svc.balancer.pick(performance.now()) : undefined;
    const target = ep?.target ?? ctx.target;
    const peer = ep !== undefined ? ep.identity : ctx.peerIdentity;
    const tunnel = this.o.tunnel;
    const key = ep?.key ?? ctx.targetAddr;
    // Meshed, on a connection of its own (not the decrypted stream of one): a stream of the tunnel session.
    const session = upstream === undefined && peer !== undefined && tunnel !== undefined && client === socket ? tunnel(target, key, peer) : undefined;
    const meshed = upstream !== undefined ? { upstream } : peer !== undefined ? { dial: () => this.o.dialMeshed(target, peer, 'opaque') } : {};
    const tapped = this.o.tap?.openOpaque(ctx, protocol);
    if (ep?.ewma !== undefined) {
      ep.ewma.pending++;
      ep.accrual!.dispatched(performance.now());
    }
    const perConnection = (): Promise<ForwardResult> => {
      // Its upstream is its own again: the descriptor shareUpstream() gave back is taken again.
      if (this.#fdUnits.get(socket) === 1) {
        this.#fdUnits.set(socket, 2);
        this.o.fds.acquire();
      }
      return forwardOpaque(client, target, { connectTimeoutMs, ...meshed });
    };
    if (session !== undefined) this.#shareUpstream(socket);
    const forwarded = session !== undefined
      // A peer proxy found not to take tunnels on the way: an mTLS connection of its own after all.
      ? forwardTunnel(client, target, () => tunnel!(target, key, peer!), perConnection, session)
      : perConnection();
    forwarded.then((r) => {
      if (r.error !== undefined) this.o.log.info('forward failed', { direction: ctx.direction, src: ctx.src, dst: ctx.targetAddr, ...(ep ? { endpoint: ep.key } : {}), code: r.error, reason: r.detail });
      if (ep?.ewma !== undefined) {
        ep.ewma.pending--;
        // Only a failed connect says something about the endpoint; how a stream ends is the application's business.
        if (r.error?.startsWith('MESH_CONNECT') === true) ep.accrual!.failure(performance.now());
        else ep.accrual!.success();
      }
      if (tapped !== undefined) this.o.tap!.closeOpaque(tapped, socket.bytesRead, socket.bytesWritten, r.error);
      this.closed(socket, ctx, protocol, r.error);
    });
  }

  /**
   * The upstream opened for a client still silent after the server-speaks-first
   * window: to a meshed destination's proxy with the protocol not yet known
   * (it races the app's first bytes in turn), else to the destination itself.
   */
  dialEarly(a: Accepted, connectTimeoutMs: number): Promise<Socket> {
    return this.dial(a.target, a.peer, 'unknown', connectTimeoutMs);
  }

  /** `target` itself, or (meshed: `peer` set) its proxy over mTLS announcing `protocol`. */
  dial(target: SocketAddress, peer: string | undefined, protocol: SessionProtocol, connectTimeoutMs: number): Promise<Socket> {
    return peer !== undefined ? this.o.dialMeshed(target, peer, protocol) : dialTcp(target, connectTimeoutMs);
  }

  /** Hands a stream (plain, or decrypted) to the HTTP stage for its protocol. */
  serve(socket: Socket, client: Socket, ctx: ConnContext, protocol: 'http1' | 'h2', http: HttpStage, acceptedAt?: number): void {
    // A client gone during detection is counted as opened and closed at once.
    if (socket.destroyed) return this.closed(socket, ctx, protocol, 'MESH_CLIENT_CLOSED');
    this.#shareUpstream(socket);
    socket.once('close', () => this.closed(socket, ctx, protocol, undefined));
    if (protocol === 'http1') http.serveH1(client, ctx, acceptedAt);
    else http.serveH2(client, ctx);
  }

  /**
   * HTTP's upstream connections are pooled and shared, and so are tunnel sessions, not
   * this connection's own: it holds one descriptor, and releases one when it closes (the
   * shared sockets are counted when the budget recounts against the kernel).
   */
  #shareUpstream(socket: Socket): void {
    if (this.#fdUnits.get(socket) === 2) {
      this.#fdUnits.set(socket, 1);
      this.o.fds.release();
    }
  }

  /**
   * A peer proxy's tunnel session (inbound): each CONNECT stream is a connection to the
   * workload at `a`'s address and the stream's port, accounted as an inbound connection of
   * its own (labels as for a per-connection mTLS session: tls="true", the client's identity).
   * The session itself is not a connection in the tcp_* series: the streams are.
   */
  tunnels(a: Accepted, secured: Socket, clientId: string, connectTimeoutMs: number, proxyPorts: ReadonlySet<number>): void {
    const { log, metrics, fds } = this.o;
    a.pending.drop();
    if (a.socket.destroyed) return;
    // The session holds its own descriptor; each stream's workload socket takes one more.
    this.#shareUpstream(a.socket);
    // A client proxy that vanishes (its node lost) sends nothing more, and only it PINGs: TCP
    // keepalive ends the session, and its streams' workload connections, after ~12 minutes.
    a.socket.setKeepAlive(true, 60_000);
    const src = a.src;
    const tap = this.o.tap;
    let streams = 0;
    const host: TunnelHost = {
      open: (target): TunnelledConnection | { refused: ProxyErrorCode; why: string } => {
        if (!fds.canAccept()) {
          metrics.acceptRefused('inbound', 'fd_reserve');
          return { refused: 'MESH_FD_EXHAUSTED', why: 'no descriptor to spare for the workload connection' };
        }
        fds.acquire();
        const targetAddr = formatAddr(target);
        const ctx: ConnContext = {
          direction: 'inbound', target, targetAddr, src, clientId,
          metrics: metrics.connection({ direction: 'inbound', target_addr: targetAddr, tls: 'true', client_id: clientId }),
        };
        const id = ++streams;
        if (log.enabled('debug')) log.debug('tunnelled', { direction: 'inbound', src, dst: targetAddr, client_id: clientId, stream: id });
        const tapped = tap?.openOpaque(ctx, 'opaque');
        return {
          target,
          closed: (r) => {
            fds.release();
            if (r.error !== undefined) log.info('forward failed', { direction: 'inbound', src, dst: targetAddr, client_id: clientId, code: r.error, reason: r.detail });
            if (tapped !== undefined) tap!.closeOpaque(tapped, r.bytesFromClient, r.bytesFromServer, r.error);
            this.#closedWith(ctx, 'opaque', r.bytesFromClient, r.bytesFromServer, r.error, id);
          },
        };
      },
      dial: (target) => dialTcp(target, connectTimeoutMs),
    };
    let cancelRetire = ignore;
    const session: H2ServerConnection = new H2ServerConnection(secured, new TunnelServer(a.target, host, proxyPorts), {
      // Its limits (h2/limits.ts): streams up to what the descriptor budget bounds first (10,000
      // idle database connections ride one session, not eight), windows for bulk.
      peer: 'tunnel',
      onClose: () => {
        cancelRetire();
        this.#tunnelSessions.delete(session);
      },
    });
    // No new streams once a certificate that authenticated the session has expired (GOAWAY:
    // the client proxy opens a new session for them, with the certificates of the day).
    cancelRetire = retireAtExpiry(secured, () => session.close());
    this.#tunnelSessions.add(session);
    secured.resume();
    // Accepted during a drain: it takes no streams either (the client proxy sends them elsewhere).
    if (this.#draining) session.close();
  }

  /** Shutdown: open connections get up to graceMs to finish, then are reset. */
  drain(graceMs: number): Promise<void> {
    // Tunnel sessions take no new streams; each closes once its streams are done.
    this.#draining = true;
    for (const t of this.#tunnelSessions) t.close();
    const open = this.open;
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
}
