// Mutual TLS between proxies. The client side dials a destination known to be
// meshed: TLS 1.3, our workload certificate, SNI = the identity the peer must
// prove, ALPN transport.mesh.io/v1; then the connection header. The server
// side terminates a ClientHello that named this proxy's own identity and
// learns the client's identity from its verified certificate.
// Certificates rotate under it: every new connection uses the newest one,
// established sessions keep theirs (TLS checks validity at the handshake only).
import { connect as netConnect, type Socket } from 'node:net';
import tls, { type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { noSessionTickets, resetOnClose, sealedWatch, type SocketAddress } from '../../native/index.js';
import { ProxyError } from '../errors.js';
import { MAX_TIMER_MS } from '../timers.js';
import { addedSince, listenersOf, sealedOf, sealSession, type Listeners, type SessionFacts } from './sealed.js';

const ignore = (): void => {};

export const TRANSPORT_ALPN = 'transport.mesh.io/v1';
/**
 * Offered first by a client dialling an HTTP/2 session (h2 or tunnel), and preferred by the
 * server: the connection header will name one of those, so both sides may take the records
 * over from Node's TLS once the handshake is done (transport/sealed.ts). The wire format is
 * the same; an older server picks TRANSPORT_ALPN and the session stays on Node's TLS there.
 */
export const SESSION_ALPN = 'transport.mesh.io/v1+h2';

export interface WorkloadCredentials {
  identity: string;
  chainPem: string;
  keyPem: string;
}

export type Terminated =
  /** `socket`: the TLS socket, or for a sealed session the TCP socket it now speaks through (sealedOf). */
  | { kind: 'secured'; socket: Socket; clientId: string }
  | { kind: 'refused'; code: 'MESH_CLIENT_CERT_INVALID' | 'MESH_TLS_HANDSHAKE' | 'MESH_IDENTITY_NOT_READY'; reason: string };

/** TLS socket → the TCP socket under it. */
const rawUnder = new WeakMap<Socket, Socket>();
/** TCP sockets with a TLS layer on them (or being put on them). */
const wrapped = new WeakSet<Socket>();

/**
 * Resets a connection: `s` may be a plain TCP socket, a TLS socket, or the TCP
 * socket under one. Node's resetAndDestroy() on a TCP socket under a live TLS
 * layer crashes the process (seen: SIGSEGV), so there the close is armed to
 * send a RST (SO_LINGER 0, native addon) and both sockets are destroyed.
 */
export function resetAndDestroy(s: Socket): void {
  const raw = rawUnder.get(s) ?? s;
  if (!wrapped.has(raw)) return void raw.resetAndDestroy();
  if (!raw.destroyed) {
    try {
      resetOnClose(raw);
    } catch {
      // No descriptor any more: the connection is already closing; a FIN it is.
    }
  }
  if (raw !== s) s.destroy();
  raw.destroy();
}

/**
 * Calls `retire` when the first of the certificates that authenticated `s` expires (its
 * peer's or our own), unless `cancel` is called first; nothing for a socket that is not TLS.
 * A session that many connections share (HTTP/2, tunnels) is retired then, and its new
 * streams go to a new session: nothing new is carried on an authentication that has run out,
 * and renewed certificates are taken up by the sessions, not only by new connections.
 */
export function retireAtExpiry(s: Socket, retire: () => void): () => void {
  const sealed = sealedOf(s);
  if (sealed === undefined && !(s instanceof tls.TLSSocket)) return ignore;
  const at = sealed !== undefined ? sealed.facts.expiresAt : expiryOf(s as TLSSocket);
  if (Number.isNaN(at)) return ignore;
  // Within setTimeout's range (2^31-1 ms, ~24.8 days): a longer-lived certificate is looked at again then.
  const wait = Math.max(0, at - Date.now());
  let timer: NodeJS.Timeout;
  const arm = (ms: number): void => {
    timer = setTimeout(ms > MAX_TIMER_MS ? () => arm(ms - MAX_TIMER_MS) : retire, Math.min(ms, MAX_TIMER_MS));
    timer.unref();
  };
  arm(wait);
  return () => clearTimeout(timer);
}

/** When the first of the two certificates that authenticated `s` expires (ms since the epoch; NaN: neither known). */
function expiryOf(s: TLSSocket): number {
  const own = s.getCertificate() as { valid_to?: string } | null;
  const peer = s.getPeerCertificate() as { valid_to?: string } | null;
  const ownAt = Date.parse(own?.valid_to ?? '');
  const peerAt = Date.parse(peer?.valid_to ?? '');
  // Whichever expiry is known (both, on a session this proxy made or accepted).
  return Number.isNaN(ownAt) ? peerAt : Number.isNaN(peerAt) ? ownAt : Math.min(ownAt, peerAt);
}

/** The identity a mesh certificate carries: its one DNS SAN, or undefined if it has not exactly one. */
export function identityOf(cert: PeerCertificate | undefined): string | undefined {
  const san = cert?.subjectaltname;
  if (san === undefined || !san.startsWith('DNS:') || san.includes(',')) return undefined;
  return san.slice(4);
}

/** The SecureContext a tls.Server makes its connections from (node:tls keeps it as _sharedCreds). */
function serverContext(server: tls.Server): unknown {
  return (server as unknown as { _sharedCreds?: unknown })._sharedCreds;
}

/**
 * TLS 1.3 suites between proxies, AES-128-GCM first (OpenSSL's own order puts AES-256-GCM
 * first). With AES-NI it costs less per byte (this VM: 1,180 against 1,060 MB/s per core in 16
 * KiB records), and opaque bulk spends a fifth of each proxy's CPU in it; it is TLS 1.3's
 * mandatory suite and what BoringSSL, hence Envoy and Istio, prefers. The server's order decides
 * (honorCipherOrder), so a peer on the old order gets it too. Both GCM suites can be sealed
 * (native/sealed.c); ChaCha20 stays allowed for a peer that offers nothing else.
 */
const MESH_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export class MeshTls {
  #client: SecureContext | undefined;
  #server: tls.Server | undefined;
  readonly #pending = new WeakMap<Socket, (t: Terminated) => void>();
  /** The listeners node:tls added on each TCP socket it was put on (sealSession removes them). */
  readonly #tlsListeners = new WeakMap<Socket, Listeners>();

  constructor(readonly identity: string, private readonly anchorsPem: string, private readonly handshakeTimeoutMs: number) {}

  ready(): boolean {
    return this.#client !== undefined;
  }

  /** A new certificate: new connections, both ways, present it from now on. */
  update(cert: WorkloadCredentials): void {
    const options = { key: cert.keyPem, cert: cert.chainPem, ca: this.anchorsPem, minVersion: 'TLSv1.3' as const, ciphers: MESH_SUITES, honorCipherOrder: true };
    this.#client = tls.createSecureContext(options);
    // Sessions keep their traffic secrets until they are sealed (or the handshake fails).
    sealedWatch(this.#client);
    if (this.#server) {
      this.#server.setSecureContext(options);
      noSessionTickets(serverContext(this.#server));
      sealedWatch(serverContext(this.#server));
      return;
    }
    const server = tls.createServer({
      ...options,
      // Verified here but judged in onSecure, so a refusal can say why (expired, unknown anchor, none).
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: [SESSION_ALPN, TRANSPORT_ALPN],
      handshakeTimeout: this.handshakeTimeoutMs,
    });
    // Proxies never resume sessions with each other: tickets would only cost the client proxy
    // memory for each connection it holds (~5 KB) and this one an encryption per handshake
    // (and a server that sends them cannot have its sessions sealed: they go out after handshake-done).
    noSessionTickets(serverContext(server));
    sealedWatch(serverContext(server));
    server.on('secureConnection', (s: TLSSocket) => this.#onSecure(s));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
      this.#settle(s, { kind: 'refused', code: 'MESH_TLS_HANDSHAKE', reason: `${err.code ?? 'ERR'}: ${err.message}` });
    });
    this.#server = server;
  }

  /** Server side: takes over `raw` (paused, ClientHello unread) and resolves once the client is judged. */
  terminate(raw: Socket): Promise<Terminated> {
    const server = this.#server;
    if (!server) return Promise.resolve({ kind: 'refused', code: 'MESH_IDENTITY_NOT_READY', reason: 'this proxy holds no certificate yet' });
    return new Promise((resolve) => {
      this.#pending.set(raw, resolve);
      wrapped.add(raw);
      const before = listenersOf(raw);
      server.emit('connection', raw);
      this.#tlsListeners.set(raw, addedSince(raw, before));
    });
  }

  #onSecure(s: TLSSocket): void {
    const clientId = s.authorized ? identityOf(s.getPeerCertificate()) : undefined;
    if (!s.authorized) {
      const why = Object.keys(s.getPeerCertificate()).length === 0 ? 'no client certificate' : String(s.authorizationError);
      return this.#settle(s, { kind: 'refused', code: 'MESH_CLIENT_CERT_INVALID', reason: `client certificate refused: ${why}` });
    }
    if (clientId === undefined) {
      return this.#settle(s, { kind: 'refused', code: 'MESH_CLIENT_CERT_INVALID', reason: 'client certificate does not carry exactly one DNS name' });
    }
    // Still inside the handshake callback: an HTTP/2 session's records are taken over now or never.
    const raw = (s as unknown as { _parent?: Socket })._parent;
    const added = raw === undefined ? undefined : this.#tlsListeners.get(raw);
    if (s.alpnProtocol === SESSION_ALPN && raw !== undefined && added !== undefined && this.#pending.has(raw)) {
      if (sealSession(s, raw, added, { peerIdentity: clientId, expiresAt: expiryOf(s) }) !== undefined) {
        return this.#settle(s, { kind: 'secured', socket: raw, clientId });
      }
    }
    this.#settle(s, { kind: 'secured', socket: s, clientId });
  }

  #settle(s: TLSSocket, t: Terminated): void {
    // node:tls keeps the wrapped socket as _parent; it is the key terminate() was called with.
    const raw = (s as unknown as { _parent?: Socket })._parent;
    const resolve = raw ? this.#pending.get(raw) : undefined;
    if (!raw || !resolve) return void s.destroy();
    this.#pending.delete(raw);
    this.#tlsListeners.delete(raw);
    if (t.kind !== 'secured' || t.socket === s) rawUnder.set(s, raw);
    if (t.kind === 'refused') resetAndDestroy(s);
    resolve(t);
  }

  /**
   * Client side: resolves with a secured socket to `target` whose certificate
   * names `peer` and chains to our anchors, with `header` written and flushed,
   * ready for a protocol to be spoken on it. Rejects with a ProxyError.
   * `session`: an HTTP/2 session (h2, tunnel) whose records are sealed here once the server
   * agrees (SESSION_ALPN): it then resolves with the TCP socket it speaks through (sealedOf).
   */
  connect(target: SocketAddress, peer: string, header: Buffer, timeoutMs: number, session = false): Promise<Socket> {
    const context = this.#client;
    if (!context) return Promise.reject(new ProxyError('MESH_IDENTITY_NOT_READY', 'this proxy holds no certificate yet'));
    return new Promise((resolve, reject) => {
      // Our own TCP socket under the TLS one, so a stream can be ended with a reset.
      const raw = netConnect({ host: target.address, port: target.port, noDelay: true, allowHalfOpen: true });
      // Failures after the handshake surface on the TLS socket; one without a listener would crash.
      raw.on('error', ignore);
      const before = listenersOf(raw);
      // allowHalfOpen (passed through by node:tls, missing from its types): a FIN one way must leave the other open.
      const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
        socket: raw,
        servername: peer,
        ALPNProtocols: session ? [SESSION_ALPN, TRANSPORT_ALPN] : [TRANSPORT_ALPN],
        secureContext: context,
        minVersion: 'TLSv1.3',
        allowHalfOpen: true,
        checkServerIdentity: expectPeer(peer, target),
      };
      const s = tls.connect(options);
      const added = addedSince(raw, before);
      rawUnder.set(s, raw);
      wrapped.add(raw);
      let tcpUp = false;
      let settled = false;
      // One timeout for TCP connect and handshake together. Each verdict waits
      // one poll phase (see dialTcp): a stalled event loop must not fail what
      // completed in time.
      const timer = setTimeout(() => setImmediate(() => {
        if (!settled) fail(new ProxyError('MESH_CONNECT_TIMEOUT', `no mTLS connection to ${formatTarget(target)} within ${timeoutMs} ms`));
      }), timeoutMs);
      raw.once('connect', () => (tcpUp = true));
      const fail = (e: ProxyError): void => {
        settled = true;
        clearTimeout(timer);
        s.destroy();
        raw.destroy();
        reject(e);
      };
      const onError = (err: NodeJS.ErrnoException): void => fail(handshakeError(err, tcpUp, target));
      s.once('error', onError);
      raw.once('error', onError);
      s.once('secureConnect', () => {
        if (s.alpnProtocol !== TRANSPORT_ALPN && !(session && s.alpnProtocol === SESSION_ALPN)) {
          return fail(new ProxyError('MESH_PEER_NOT_MESHED', `${formatTarget(target)} did not negotiate ${TRANSPORT_ALPN}: no mesh proxy there`));
        }
        if (s.alpnProtocol === SESSION_ALPN) {
          // Inside the handshake callback: the records are taken over now, the header is their first bytes.
          const facts: SessionFacts = { peerIdentity: peer, expiresAt: expiryOf(s) };
          const ch = sealSession(s, raw, added, facts, () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            raw.removeListener('error', onError);
            if (raw.destroyed) return reject(new ProxyError('MESH_TLS_HANDSHAKE', `mTLS connection to ${formatTarget(target)} closed at the handshake's end`));
            rawUnder.delete(s);
            resolve(raw);
          });
          if (ch !== undefined) return void ch.write(header);
        }
        // The header must be flushed before anyone else writes: node's TLS layer
        // aborts on a second write issued while a first is still pending natively.
        s.write(header, (err) => {
          if (err) return fail(handshakeError(err, true, target));
          settled = true;
          clearTimeout(timer);
          s.removeListener('error', onError);
          raw.removeListener('error', onError);
          resolve(s);
        });
      });
    });
  }
}

/**
 * The client's identity check, made outside connect(): node keeps it (in the socket's options)
 * for as long as the connection lives, and a closure made there would keep all of connect()'s
 * state with it (the header's pooled buffer, timers, callbacks), ~1 KB per idle session.
 */
function expectPeer(peer: string, target: SocketAddress): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const got = identityOf(cert);
    return got === peer ? undefined : new ProxyError('MESH_PEER_IDENTITY_MISMATCH', `${formatTarget(target)} presented ${got ?? cert.subjectaltname ?? 'no name'}, expected ${peer}`);
  };
}

function formatTarget(t: SocketAddress): string {
  return t.family === 6 ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`;
}

function handshakeError(err: NodeJS.ErrnoException, tcpUp: boolean, target: SocketAddress): ProxyError {
  if (err instanceof ProxyError) return err;
  if (!tcpUp) {
    if (err.code === 'ECONNREFUSED') return new ProxyError('MESH_CONNECT_REFUSED', `connection refused: ${err.message}`);
    return new ProxyError('MESH_CONNECT_FAILED', `connect failed: ${err.message}`);
  }
  // OpenSSL's verification codes: an expired certificate, an unknown anchor, a broken chain.
  if (err.code !== undefined && /CERT|SIGNATURE|ISSUER|VERIFY/.test(err.code)) {
    return new ProxyError('MESH_PEER_CERT_INVALID', `${formatTarget(target)} presented a certificate we do not trust: ${err.code}`);
  }
  return new ProxyError('MESH_TLS_HANDSHAKE', `mTLS handshake with ${formatTarget(target)} failed: ${err.code ?? ''} ${err.message}`.trim());
}
