// One connector for every upstream the forwarder sends requests to:
//   an HTTP/1 keep-alive pool per endpoint (plain TCP),
//   one h2 connection per endpoint for h2c from apps (plain TCP),
//   one h2 connection per meshed endpoint inside mTLS, shared by every HTTP/1
//   and h2 request to it (the connection header says "h2"),
//   one tunnel session per meshed endpoint inside mTLS, shared by every opaque
//   connection to it, each a CONNECT stream (the header says "tunnel").
// Connections are made on first use; requests sent meanwhile wait in a
// PendingDispatcher. A connection that went away (GOAWAY, loss) is replaced on
// the next request.
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import type { Log } from '../log.js';
import { H2ClientConnection } from '../h2/index.js';
import type { Dispatcher } from '../message/types.js';
import { ProxyError } from '../errors.js';
import { dialTcp } from '../opaque.js';
import { encodeHeader, type SessionProtocol } from '../transport/header.js';
import { retireAtExpiry, type MeshTls } from '../transport/tls.js';
import { PendingDispatcher } from './pending.js';

/** A keep-alive pool of HTTP/1 connections to one endpoint. */
export interface H1PoolLike extends Dispatcher {
  /** Closes idle connections; in-flight requests finish. */
  close(): void;
  /** Connections kept idle, and carrying a request (a pool with neither holds nothing). */
  readonly idle?: number;
  readonly active?: number;
}

/** How often HTTP/1 pools that hold nothing are let go (an endpoint gone for good keeps no entry). */
const PRUNE_EVERY_MS = 60_000;

export interface UpstreamsOptions {
  connectTimeoutMs: number;
  log: Log;
  /** Mutual TLS to meshed endpoints; absent when identity is off. */
  tls?: MeshTls;
  /** Makes the HTTP/1 pool for an endpoint, given how to dial it. */
  h1Pool(dial: () => Promise<Socket>, key: string): H1PoolLike;
}

type H2Entry = H2ClientConnection | PendingDispatcher;

/**
 * A PING after this long without traffic on an upstream h2 connection; a peer that
 * answers nothing for as long again is taken as gone (Linkerd's HTTP/2 keepalive
 * between proxies is 10 s too).
 */
const H2_KEEPALIVE_MS = 10_000;

/** How long a peer proxy that refused a tunnel session is not offered one again. */
const NO_TUNNEL_MS = 5 * 60_000;

/** Connections per h2 upstream: one normally; more only while the first ones are full. */
const MAX_H2_CONNECTIONS = 8;

/** What the HTTP stage needs of a connector (tests give their own). */
export interface Connector {
  h1(target: SocketAddress, key: string): Dispatcher;
  h2(target: SocketAddress, key: string, peer: string | undefined): Dispatcher;
  dialMeshed(target: SocketAddress, peer: string, protocol: SessionProtocol): Promise<Socket>;
  /**
   * The tunnel session to the proxy at `target` proving `peer`: opaque connections as CONNECT
   * streams; undefined while that proxy is known not to take tunnels (an mTLS connection each).
   */
  tunnel(target: SocketAddress, key: string, peer: string): Dispatcher | undefined;
}

export class Upstreams implements Connector {
  readonly #h1 = new Map<string, H1PoolLike>();
  /** By endpoint key, then by peer identity ('' for h2c): two lookups of strings whose hashes are cached, not a key built per request. */
  readonly #h2 = new Map<string, Map<string, H2Entry[]>>();
  /** Tunnel sessions, the same way. */
  readonly #tunnels = new Map<string, Map<string, H2Entry[]>>();
  /** Endpoint and identity → until when its proxy is taken not to know tunnels (performance.now()). */
  readonly #noTunnel = new Map<string, number>();
  #closing = false;

  constructor(private readonly o: UpstreamsOptions) {}

  /** The HTTP/1 pool to `target` (key: its address as metrics print it). */
  h1(target: SocketAddress, key: string): Dispatcher {
    let p = this.#h1.get(key);
    if (p === undefined) {
      const timeout = this.o.connectTimeoutMs;
      p = this.o.h1Pool(() => dialTcp(target, timeout), key);
      this.#h1.set(key, p);
      if (this.#pruner === undefined) {
        this.#pruner = setInterval(() => this.prune(), PRUNE_EVERY_MS);
        this.#pruner.unref();
      }
    }
    return p;
  }

  #pruner: NodeJS.Timeout | undefined;

  /**
   * Lets go of HTTP/1 pools with no connection, idle or busy: endpoints come and go with
   * rollouts, and each one ever dialled kept its entry. Requests look their pool up each
   * time, so a pruned one is made again when next needed.
   */
  prune(): void {
    for (const [key, p] of this.#h1) if (p.idle === 0 && p.active === 0) this.#h1.delete(key);
  }

  /**
   * An h2 connection to `target`: prior-knowledge h2c, or mTLS to the proxy
   * proving `peer`. One connection carries everything until it is full (the
   * peer's concurrent-stream limit); then another is opened beside it, up to
   * MAX_H2_CONNECTIONS, so a client holding many streams open (never reading
   * them) cannot make others queue behind it.
   */
  h2(target: SocketAddress, key: string, peer: string | undefined): Dispatcher {
    return this.#session(this.#h2, 'h2', target, key, peer);
  }

  tunnel(target: SocketAddress, key: string, peer: string): Dispatcher | undefined {
    const marked = `${key}\0${peer}`;
    const until = this.#noTunnel.get(marked);
    if (until !== undefined) {
      if (until > performance.now()) return undefined;
      this.#noTunnel.delete(marked);
    }
    return this.#session(this.#tunnels, 'tunnel', target, key, peer);
  }

  #session(sessions: Map<string, Map<string, H2Entry[]>>, protocol: 'h2' | 'tunnel', target: SocketAddress, key: string, peer: string | undefined): Dispatcher {
    let byPeer = sessions.get(key);
    if (byPeer === undefined) sessions.set(key, (byPeer = new Map()));
    const k = peer ?? '';
    let set = byPeer.get(k);
    if (set === undefined) byPeer.set(k, (set = []));
    let least: H2ClientConnection | undefined;
    for (const c of set) {
      if (c instanceof PendingDispatcher) return c;
      if (!c.isAvailable()) continue;
      if (c.load < c.peerMaxStreams) return c;
      if (least === undefined || c.load < least.load) least = c;
    }
    if (least !== undefined && set.length >= MAX_H2_CONNECTIONS) return least;
    return this.#dialH2(sessions, protocol, target, key, byPeer, peer, set);
  }

  #dialH2(
    sessions: Map<string, Map<string, H2Entry[]>>, protocol: 'h2' | 'tunnel',
    target: SocketAddress, key: string, byPeer: Map<string, H2Entry[]>, peer: string | undefined, set: H2Entry[],
  ): Dispatcher {
    const pending = new PendingDispatcher();
    set.push(pending);
    const swap = (from: H2Entry, to: H2ClientConnection | undefined): void => {
      const i = set.indexOf(from);
      if (i < 0) return;
      if (to === undefined) set.splice(i, 1);
      else set[i] = to;
      if (set.length === 0 && byPeer.get(peer ?? '') === set) {
        byPeer.delete(peer ?? '');
        if (byPeer.size === 0 && sessions.get(key) === byPeer) sessions.delete(key);
      }
    };
    const dial = peer === undefined ? dialTcp(target, this.o.connectTimeoutMs) : this.dialMeshed(target, peer, protocol);
    dial.then(
      (socket) => {
        let cancelRetire = (): void => {};
        const conn: H2ClientConnection = new H2ClientConnection(socket, {
          peer: peer === undefined ? 'app' : protocol === 'tunnel' ? 'tunnel' : 'mesh',
          keepaliveMs: H2_KEEPALIVE_MS,
          onClose: () => {
            cancelRetire();
            swap(conn, undefined);
            // Closed by the peer proxy before a word of HTTP/2: one too old to know tunnels (a
            // rolling upgrade). Its opaque connections get an mTLS connection each for a while.
            if (protocol === 'tunnel' && !conn.peerSpoke && peer !== undefined) {
              this.#noTunnel.set(`${key}\0${peer}`, performance.now() + NO_TUNNEL_MS);
              this.o.log.info('peer proxy takes no tunnel session: an mTLS connection per opaque connection', { dst: key, server_id: peer, for_s: NO_TUNNEL_MS / 1000 });
            }
          },
        });
        // mTLS: no new streams once a certificate that authenticated the session has expired.
        cancelRetire = retireAtExpiry(socket, () => conn.close());
        swap(pending, conn);
        // Requests that waited for this connection are in flight: send them
        // before a drain's GOAWAY, which would refuse them (502) instead.
        pending.ready(conn);
        if (this.#closing) conn.close();
      },
      (e: unknown) => {
        swap(pending, undefined);
        this.o.log.debug('upstream connect failed', { dst: key, reason: (e as Error).message });
        pending.failed(e);
      },
    );
    return pending;
  }

  /** An mTLS connection to the proxy at `target` proving `peer`, announcing `protocol`. */
  dialMeshed(target: SocketAddress, peer: string, protocol: SessionProtocol): Promise<Socket> {
    const tls = this.o.tls;
    if (tls === undefined) return Promise.reject(new ProxyError('MESH_IDENTITY_NOT_READY', 'identity is off: no mTLS to a meshed destination'));
    // HTTP/2 sessions (shared HTTP, tunnels) are sealed once the peer agrees (transport/sealed.ts).
    const session = protocol === 'h2' || protocol === 'tunnel';
    return tls.connect(target, peer, encodeHeader({ protocol, port: target.port }), this.o.connectTimeoutMs, session);
  }

  /** Shutdown: idle connections close, in-flight requests finish (GOAWAY on h2). */
  drain(): void {
    this.#closing = true;
    clearInterval(this.#pruner);
    for (const p of this.#h1.values()) p.close();
    for (const sessions of [this.#h2, this.#tunnels]) {
      for (const byPeer of sessions.values()) for (const set of byPeer.values()) for (const c of set) if (c instanceof H2ClientConnection) c.close();
    }
  }
}
