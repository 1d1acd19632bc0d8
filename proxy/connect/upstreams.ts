// One connector for every upstream the forwarder sends requests to:
//   an HTTP/1 keep-alive pool per endpoint (plain TCP),
//   one h2 connection per endpoint for h2c from apps (plain TCP),
//   one h2 connection per meshed endpoint inside mTLS, shared by every HTTP/1
//   and h2 request to it (the connection header says "h2").
// Connections are made on first use; requests sent meanwhile wait in a
// PendingDispatcher. A connection that went away (GOAWAY, loss) is replaced on
// the next request.
import type { Socket } from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import type { Log } from '../log.js';
import { H2ClientConnection } from '../h2/index.js';
import type { Dispatcher } from '../message/types.js';
import { ProxyError } from '../errors.js';
import { dialTcp } from '../opaque.js';
import { encodeHeader, type SessionProtocol } from '../transport/header.js';
import type { MeshTls } from '../transport/tls.js';
import { PendingDispatcher } from './pending.js';

/** A keep-alive pool of HTTP/1 connections to one endpoint. */
export interface H1PoolLike extends Dispatcher {
  /** Closes idle connections; in-flight requests finish. */
  close(): void;
}

export interface UpstreamsOptions {
  connectTimeoutMs: number;
  log: Log;
  /** Mutual TLS to meshed endpoints; absent when identity is off. */
  tls?: MeshTls;
  /** Makes the HTTP/1 pool for an endpoint, given how to dial it. */
  h1Pool(dial: () => Promise<Socket>, key: string): H1PoolLike;
}

type H2Entry = H2ClientConnection | PendingDispatcher;

/** What the HTTP stage needs of a connector (tests give their own). */
export interface Connector {
  h1(target: SocketAddress, key: string): Dispatcher;
  h2(target: SocketAddress, key: string, peer: string | undefined): Dispatcher;
  dialMeshed(target: SocketAddress, peer: string, protocol: SessionProtocol): Promise<Socket>;
}

export class Upstreams implements Connector {
  readonly #h1 = new Map<string, H1PoolLike>();
  readonly #h2 = new Map<string, H2Entry>();
  #closing = false;

  constructor(private readonly o: UpstreamsOptions) {}

  /** The HTTP/1 pool to `target` (key: its address as metrics print it). */
  h1(target: SocketAddress, key: string): Dispatcher {
    let p = this.#h1.get(key);
    if (p === undefined) {
      const timeout = this.o.connectTimeoutMs;
      p = this.o.h1Pool(() => dialTcp(target, timeout), key);
      this.#h1.set(key, p);
    }
    return p;
  }

  /** The h2 connection to `target`: prior-knowledge h2c, or mTLS to the proxy proving `peer`. */
  h2(target: SocketAddress, key: string, peer: string | undefined): Dispatcher {
    const k = peer === undefined ? key : `${key} ${peer}`;
    const have = this.#h2.get(k);
    if (have !== undefined && (have instanceof PendingDispatcher || have.isAvailable())) return have;
    const pending = new PendingDispatcher();
    this.#h2.set(k, pending);
    const dial = peer === undefined ? dialTcp(target, this.o.connectTimeoutMs) : this.dialMeshed(target, peer, 'h2');
    dial.then(
      (socket) => {
        const conn = new H2ClientConnection(socket, {
          peer: peer === undefined ? 'app' : 'mesh',
          onClose: () => {
            if (this.#h2.get(k) === conn) this.#h2.delete(k);
          },
        });
        if (this.#h2.get(k) === pending) this.#h2.set(k, conn);
        // Requests that waited for this connection are in flight: send them
        // before a drain's GOAWAY, which would refuse them (502) instead.
        pending.ready(conn);
        if (this.#closing) conn.close();
      },
      (e: unknown) => {
        if (this.#h2.get(k) === pending) this.#h2.delete(k);
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
    return tls.connect(target, peer, encodeHeader({ protocol, port: target.port }), this.o.connectTimeoutMs);
  }

  /** Shutdown: idle connections close, in-flight requests finish (GOAWAY on h2). */
  drain(): void {
    this.#closing = true;
    for (const p of this.#h1.values()) p.close();
    for (const c of this.#h2.values()) if (c instanceof H2ClientConnection) c.close();
  }
}
