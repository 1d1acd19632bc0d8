// Opaque TCP forwarding: bytes both ways with backpressure (pipe), half-close
// carried across (a FIN one way leaves the other way open), a reset answered
// with a reset, and a connect that cannot hang forever.
import { connect, type Socket } from 'node:net';
import type { SocketAddress } from '../native/index.js';

export interface ForwardOptions {
  connectTimeoutMs: number;
  /** Written to the upstream before the client's bytes (a re-serialized HTTP Upgrade request head). */
  prefix?: Buffer;
}

export type ForwardErrorCode = 'MESH_CONNECT_TIMEOUT' | 'MESH_CONNECT_REFUSED' | 'MESH_CONNECT_FAILED' | 'MESH_STREAM_RESET';

export interface ForwardResult {
  /** Undefined when both sides closed cleanly. */
  error?: ForwardErrorCode;
  detail?: string;
  bytesFromClient: number;
  bytesFromServer: number;
}

function codeOf(err: NodeJS.ErrnoException, connected: boolean): ForwardErrorCode {
  if (!connected) return err.code === 'ECONNREFUSED' ? 'MESH_CONNECT_REFUSED' : 'MESH_CONNECT_FAILED';
  return 'MESH_STREAM_RESET';
}

/** Forwards `client` to `target`; resolves once both sockets are closed. */
export function forwardOpaque(client: Socket, target: SocketAddress, options: ForwardOptions): Promise<ForwardResult> {
  // Its 'close' has come and gone: waiting for it would never end.
  if (client.destroyed) {
    return Promise.resolve({ error: 'MESH_STREAM_RESET', detail: 'client closed before forwarding began', bytesFromClient: 0, bytesFromServer: 0 });
  }
  return new Promise((resolve) => {
    const upstream = connect({ host: target.address, port: target.port, allowHalfOpen: true, noDelay: true });
    let connected = false;
    let error: ForwardErrorCode | undefined;
    let detail: string | undefined;
    let open = 2;

    const fail = (code: ForwardErrorCode, why: string, resetOther: Socket): void => {
      if (error === undefined) {
        error = code;
        detail = why;
      }
      if (resetOther.destroyed) return;
      // A reset (not a FIN) tells the other peer the stream did not end cleanly;
      // an upstream still connecting has no peer to tell yet.
      if (resetOther === upstream && !connected) upstream.destroy();
      else resetOther.resetAndDestroy();
    };
    const closed = (): void => {
      if (--open > 0) return;
      clearTimeout(timer);
      resolve({ error, detail, bytesFromClient: upstream.bytesWritten, bytesFromServer: client.bytesWritten });
    };

    const timer = setTimeout(() => {
      fail('MESH_CONNECT_TIMEOUT', `no connection to ${target.address}:${target.port} within ${options.connectTimeoutMs} ms`, client);
      upstream.destroy();
    }, options.connectTimeoutMs);

    upstream.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      if (options.prefix) upstream.write(options.prefix);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => fail(codeOf(err, connected), err.message, client));
    client.on('error', (err: NodeJS.ErrnoException) => fail('MESH_STREAM_RESET', `client: ${err.message}`, upstream));
    // The client may vanish before the upstream connect completes.
    client.once('close', () => {
      if (!connected && !upstream.destroyed) upstream.destroy();
      closed();
    });
    upstream.once('close', closed);
  });
}
