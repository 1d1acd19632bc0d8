// Opaque TCP forwarding: bytes both ways with backpressure (pipe), half-close
// carried across (a FIN one way leaves the other way open), a reset answered
// with a reset, and a connect that cannot hang forever. The upstream is plain
// TCP, or (dial) a mutual-TLS session to the destination's proxy.
import { connect, type Socket } from 'node:net';
import type { SocketAddress } from '../native/index.js';
import { ProxyError, type ProxyErrorCode } from './errors.js';
import { countRead } from './gc.js';
import { resetAndDestroy } from './transport/tls.js';

export interface ForwardOptions {
  connectTimeoutMs: number;
  /** Written to the upstream before the client's bytes (a re-serialized HTTP Upgrade request head). */
  prefix?: Buffer;
  /** Reaches the target some other way (mTLS); resolves once bytes may flow, rejects with a ProxyError. */
  dial?: () => Promise<Socket>;
  /**
   * An upstream already being opened (the server-speaks-first window's early one, a CONNECT's):
   * used instead of dialling, and closed if the client is gone before forwarding begins.
   */
  upstream?: Promise<Socket>;
}

const ignore = (): void => {};

export type ForwardErrorCode = ProxyErrorCode | 'MESH_STREAM_RESET';

export interface ForwardResult {
  /** Undefined when both sides closed cleanly. */
  error?: ForwardErrorCode;
  detail?: string;
  bytesFromClient: number;
  bytesFromServer: number;
}

/** Plain TCP to `target`, failing with a coded ProxyError, including after `timeoutMs`. */
export function dialTcp(target: SocketAddress, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const upstream = connect({ host: target.address, port: target.port, allowHalfOpen: true, noDelay: true });
    // Timers run before the poll phase that delivers 'connect': after the event
    // loop stalls past the timeout, the timer would fire first for a connection
    // already made. The verdict waits one poll phase (setImmediate) to see it.
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (!upstream.connecting) return;
        upstream.destroy();
        reject(new ProxyError('MESH_CONNECT_TIMEOUT', `no connection to ${target.address}:${target.port} within ${timeoutMs} ms`));
      });
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(err.code === 'ECONNREFUSED' ? new ProxyError('MESH_CONNECT_REFUSED', err.message) : new ProxyError('MESH_CONNECT_FAILED', err.message));
    };
    upstream.once('error', onError);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.removeListener('error', onError);
      resolve(upstream);
    });
  });
}

/** Forwards `client` to `target`; resolves once both sides are closed (or the dial failed). */
export function forwardOpaque(client: Socket, target: SocketAddress, options: ForwardOptions): Promise<ForwardResult> {
  // Its 'close' has come and gone: waiting for it would never end.
  if (client.destroyed) {
    // Nobody will forward on an upstream opened for it: it must not stay open (nor its dial fail unheard).
    options.upstream?.then((s) => s.destroy(), ignore);
    return Promise.resolve({ error: 'MESH_STREAM_RESET', detail: 'client closed before forwarding began', bytesFromClient: 0, bytesFromServer: 0 });
  }
  return new Promise((resolve) => {
    let upstream: Socket | undefined;
    let error: ForwardErrorCode | undefined;
    let detail: string | undefined;
    let open = 2;

    const fail = (code: ForwardErrorCode, why: string, resetOther: Socket | undefined): void => {
      if (error === undefined) {
        error = code;
        detail = why;
      }
      // A reset (not a FIN) tells the other peer the stream did not end cleanly.
      if (resetOther !== undefined && !resetOther.destroyed) resetAndDestroy(resetOther);
    };
    const closed = (): void => {
      if (--open > 0) return;
      resolve({ error, detail, bytesFromClient: client.bytesRead, bytesFromServer: client.bytesWritten });
    };

    client.on('error', (err: NodeJS.ErrnoException) => fail('MESH_STREAM_RESET', `client: ${err.message}`, upstream));
    client.once('close', closed);
    const opening = options.upstream ?? (options.dial ?? (() => dialTcp(target, options.connectTimeoutMs)))();
    opening.then(
      (up) => {
        upstream = up;
        up.on('error', (err: NodeJS.ErrnoException) => fail('MESH_STREAM_RESET', err.message, client));
        up.once('close', closed);
        // The client vanished while we were connecting.
        if (client.destroyed) return void up.destroy();
        if (options.prefix) up.write(options.prefix);
        // Bytes read count toward the next young collection (proxy/gc.ts), both ways.
        client.on('data', countRead);
        up.on('data', countRead);
        client.pipe(up);
        up.pipe(client);
      },
      (e: unknown) => {
        const pe = e instanceof ProxyError ? e : new ProxyError('MESH_CONNECT_FAILED', String(e));
        fail(pe.code, pe.message, client);
        closed();
      },
    );
  });
}
