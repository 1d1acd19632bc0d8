// Upstream HTTP/2 sessions, one per destination, shared by every request to
// it: prior-knowledge h2c to an unmeshed destination, or an HTTP/2 session
// inside mutual TLS to a meshed one (which carries HTTP/1 requests too, see
// orig-proto.ts). A meshed session takes a handshake to set up, so get()
// may answer with a promise; callers wait on it only while it connects.
import { connect, type ClientHttp2Session } from 'node:http2';
import type { ConnContext } from './context.js';
import { ProxyError } from './errors.js';
import type { Log } from './log.js';
import { encodeHeader } from './transport/header.js';
import type { MeshTls } from './transport/tls.js';

export interface H2SessionsOptions {
  connectTimeoutMs: number;
  log: Log;
  /** Mutual TLS for destinations with a peer identity; absent when identity is off. */
  tls?: MeshTls;
}

const SESSION_OPTIONS = { maxSessionMemory: 64 };

export class H2Sessions {
  readonly #sessions = new Map<string, ClientHttp2Session | Promise<ClientHttp2Session>>();

  constructor(private readonly o: H2SessionsOptions) {}

  get(ctx: ConnContext): ClientHttp2Session | Promise<ClientHttp2Session> {
    const peer = ctx.peerIdentity;
    const key = peer === undefined ? ctx.targetAddr : `${ctx.targetAddr} ${peer}`;
    const s = this.#sessions.get(key);
    if (s !== undefined && (s instanceof Promise || (!s.closed && !s.destroyed))) return s;
    if (peer === undefined) return this.#plain(key, ctx);
    return this.#meshed(key, ctx, peer);
  }

  /** GOAWAY to every session: in-flight streams finish, no new ones. */
  drain(): void {
    for (const s of this.#sessions.values()) if (!(s instanceof Promise)) s.close();
  }

  #plain(key: string, ctx: ConnContext): ClientHttp2Session {
    const session = connect(`http://${ctx.targetAddr}`, SESSION_OPTIONS);
    this.#hold(key, ctx, session);
    const timer = setTimeout(() => {
      session.destroy(new ProxyError('MESH_CONNECT_TIMEOUT', `no connection to ${ctx.targetAddr} within ${this.o.connectTimeoutMs} ms`));
    }, this.o.connectTimeoutMs);
    session.once('connect', () => clearTimeout(timer));
    session.once('close', () => clearTimeout(timer));
    return session;
  }

  #meshed(key: string, ctx: ConnContext, peer: string): Promise<ClientHttp2Session> {
    const tls = this.o.tls;
    if (!tls) return Promise.reject(new ProxyError('MESH_IDENTITY_NOT_READY', 'identity is off: no mTLS to a meshed destination'));
    const pending = tls.connect(ctx.target, peer, encodeHeader({ protocol: 'h2', port: ctx.target.port }), this.o.connectTimeoutMs).then(
      (socket) => {
        const session = connect(`http://${ctx.targetAddr}`, { ...SESSION_OPTIONS, createConnection: () => socket });
        this.#hold(key, ctx, session);
        return session;
      },
      (e: unknown) => {
        if (this.#sessions.get(key) === pending) this.#sessions.delete(key);
        throw e;
      },
    );
    this.#sessions.set(key, pending);
    return pending;
  }

  #hold(key: string, ctx: ConnContext, session: ClientHttp2Session): void {
    this.#sessions.set(key, session);
    const forget = (): void => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    };
    session.once('close', forget);
    session.once('goaway', forget);
    session.on('error', (err) => this.o.log.debug('upstream h2 session error', { dst: ctx.targetAddr, reason: err.message }));
    // Idle sessions must not keep the process alive at shutdown.
    session.unref();
  }
}
