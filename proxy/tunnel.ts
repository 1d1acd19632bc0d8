// Opaque TCP between proxies, many connections on one mTLS session. Each
// connection a client proxy forwards to a meshed destination's opaque port is
// one CONNECT stream (RFC 9113 §8.5) of an HTTP/2 session announced as
// 'tunnel' in the connection header; the server proxy dials its workload's
// port named in the stream's :authority.
//
// Why: a Node TLS socket costs ~43 KiB a side however idle (OpenSSL's state and
// node's TLSWrap buffers, none of which a Node program can size), so one
// session per opaque connection cost 55-59 KiB per connection per proxy, and a
// handshake per connection (a database pool's reconnects). A stream costs a
// few hundred bytes; the session's TLS is paid once per destination.
//
//   client socket ── bytes ──▶ request body   ─▶ ... ─▶ app socket
//   client socket ◀─ bytes ─── response body  ◀─ ... ◀─ app socket
//   FIN                    ⇄  END_STREAM (each direction on its own: half-close)
//   RST / error            ⇄  RST_STREAM(CONNECT_ERROR)
//
// The server answers 200 once its workload accepted the connection, or a 5xx
// naming the proxy error (mesh-proxy-error) when it did not; the client proxy
// reads its client's bytes only after the 200, so a stream the session
// refused (GOAWAY, REFUSED_STREAM) carried nothing yet and is sent again.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { SocketAddress } from '../native/index.js';
import { formatAddr } from './context.js';
import { ProxyError, statusFor, type ProxyErrorCode } from './errors.js';
import {
  H2_NO_ERROR, H2_REFUSED_STREAM,
  type ClientStream, type Dispatcher, type HeaderList, type RequestHead, type RequestListener, type ResponseHead, type ResponseListener,
  type ServerHandler, type ServerStream, type StreamReset,
} from './message/types.js';
import { field } from './headers.js';
import { noteRead } from './gc.js';
import { armChunk, CHUNK_BYTES, CHUNK_MIN, disarm, isLent, landed, lendCopy, spent } from './transport/chunks.js';
import { takeReadViews } from './transport/reads.js';
import type { ForwardErrorCode, ForwardResult } from './opaque.js';
import { parseLength } from './h2/server.js';
import { resetAndDestroy } from './transport/tls.js';

/** RST_STREAM code for a TCP connection reset or failed (RFC 9113 §8.5). */
export const H2_CONNECT_ERROR = 0xa;

/** A stream the session refused before processing it is sent again on another, this many times. */
const MAX_REFUSED_RETRIES = 2;

const ERROR_HEADER = 'mesh-proxy-error';

/** The CONNECT request for `target` (an address: the workload's, on the server proxy's side). */
export function connectHead(target: SocketAddress): RequestHead {
  const authority = formatAddr(target);
  return { method: 'CONNECT', target: authority, scheme: undefined, authority, version: 20, headers: [] };
}

/** The port a CONNECT's authority names ("10.0.0.7:5432", "[fd00::7]:5432"), or 0 when it names none. */
export function authorityPort(authority: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon < 0) return 0;
  // After the last colon, digits only ("[fd00::7]" ends in "7]": no port).
  const port = parseLength(authority.slice(colon + 1));
  return port > 0 && port <= 65535 ? port : 0;
}

const reset = (code: ProxyErrorCode, message: string): StreamReset => ({ h2Code: H2_CONNECT_ERROR, error: new ProxyError(code, message) });

/**
 * One TCP socket joined to one stream: bytes both ways with backpressure, a
 * FIN each way carried as END_STREAM, a reset either way as a reset. Its
 * handlers are made once per connection (none per chunk).
 */
abstract class Join {
  socket: Socket | undefined;
  /** The socket's FIN was passed on (stream.end()). */
  sentEnd = false;
  /** The stream's END_STREAM was passed on (socket.end()). */
  gotEnd = false;
  /** The stream was reset (by the peer, the session or us): nothing more goes either way. */
  streamGone = false;
  error: ForwardErrorCode | undefined;
  detail: string | undefined;
  #waitingDrain = false;

  protected abstract get stream(): ClientStream | ServerStream | undefined;
  /** Who is at the socket's end, for messages: "client" or "app". */
  protected abstract readonly side: string;
  protected abstract finished(): void;

  fail(code: ForwardErrorCode, detail: string): void {
    if (this.error !== undefined) return;
    this.error = code;
    this.detail = detail;
  }

  /** Starts listening to the socket, paused (its bytes flow once the stream is established: flow()). */
  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('end', this.#onSocketEnd);
    socket.on('error', this.#onSocketError);
    socket.on('drain', this.#onSocketDrain);
    socket.once('close', this.#onSocketClose);
    socket.pause();
  }

  /** Stops listening to the socket (it is someone else's now). Only before flow(): its reads are still Node's. */
  detach(): void {
    const socket = this.socket!;
    socket.removeListener('data', this.#onSocketData);
    socket.removeListener('end', this.#onSocketEnd);
    socket.removeListener('error', this.#onSocketError);
    socket.removeListener('drain', this.#onSocketDrain);
    socket.removeListener('close', this.#onSocketClose);
  }

  // ---- socket → stream ----

  #reading = false;
  /** The stream said "no more" (write() false): the socket stays paused until onWritable(). */
  #stalled = false;

  /** The stream is established: the socket's bytes flow into it, those it already holds first. */
  protected flow(): void {
    const socket = this.socket!;
    if (socket.destroyed) return;
    if (!this.#reading) {
      this.#reading = true;
      // Reads as views: of the shared read buffer, copied into a recycled chunk (a long one) or a
      // small buffer; or, while reads are long, landed in a recycled chunk to begin with. No
      // ArrayBuffer per read (transport/chunks.ts). Taken only now: what the socket holds
      // (bytes detection put back) is handed over at once, and needs the stream.
      if (!takeReadViews(socket, this.#onSocketBytes, this.#place)) socket.on('data', this.#onSocketData);
    }
    // Not if what it held already filled the stream.
    if (!this.#stalled) socket.resume();
  }

  #toStream(s: ClientStream | ServerStream, chunk: Buffer): void {
    if (s.write(chunk)) return;
    this.#stalled = true;
    this.socket!.pause();
  }

  readonly #onSocketData = (chunk: Buffer): void => {
    noteRead(chunk.length);
    const s = this.stream;
    if (s === undefined || this.streamGone) return;
    this.#toStream(s, chunk);
  };

  /** Where in a chunk the socket's next read lands (armChunk: one DATA frame's worth), if one was placed. */
  #armed: Buffer | undefined;
  /** The last read was long: the next is placed in a chunk (bulk), not the shared buffer. */
  #lastLong = false;

  /** Where the next read lands (asked after each read): a chunk while reads are long, else the shared buffer. */
  readonly #place = (): Buffer | null => {
    if (this.#armed === undefined && this.#lastLong && !this.streamGone) this.#armed = armChunk();
    return this.#armed ?? null;
  };

  /** A read, as a view valid during the call. A long one goes on in a chunk that sealing gives back. */
  readonly #onSocketBytes = (view: Buffer): void => {
    const n = view.length;
    const armed = this.#armed;
    const inChunk = armed !== undefined && view.buffer === armed.buffer;
    if (inChunk) this.#armed = undefined;
    this.#lastLong = n >= CHUNK_MIN;
    const s = this.stream;
    if (s === undefined || this.streamGone) {
      if (inChunk) disarm(armed);
      return;
    }
    // (Longer than a chunk: only the bytes the socket held before its reads were taken, in one piece.)
    const piece = inChunk ? landed(armed, n) : n >= CHUNK_MIN && n <= CHUNK_BYTES ? lendCopy(view, 0, n) : Buffer.from(view);
    this.#toStream(s, piece);
  };

  /** The stream can take more. */
  onWritable(): void {
    this.#stalled = false;
    if (this.#reading && !this.sentEnd && !this.streamGone) this.socket?.resume();
  }

  readonly #onSocketEnd = (): void => {
    this.sentEnd = true;
    if (!this.streamGone) this.stream?.end();
  };

  readonly #onSocketError = (err: Error): void => {
    this.fail('MESH_STREAM_RESET', `${this.side}: ${err.message}`);
  };

  readonly #onSocketClose = (): void => {
    // No read lands in a closed socket's buffer: a chunk placed for one goes back.
    if (this.#armed !== undefined) {
      disarm(this.#armed);
      this.#armed = undefined;
    }
    // Closed before both directions ended cleanly: the stream is cut, not ended.
    if (!this.streamGone && !(this.sentEnd && this.gotEnd)) {
      this.streamGone = true;
      this.fail('MESH_STREAM_RESET', `${this.side} closed the connection`);
      this.stream?.reset(reset(this.side === 'client' ? 'MESH_CLIENT_RESET' : 'MESH_UPSTREAM_RESET', `${this.side} connection reset or closed`));
    }
    this.finished();
  };

  // ---- stream → socket ----

  /** Body that came before the socket did (server side: the workload is still being dialled). */
  #early: Buffer[] | undefined;

  /** The chunk is taken either way (the contract); false asks the stream to stop until resume(). */
  onData(chunk: Buffer): boolean {
    const socket = this.socket;
    if (socket === undefined) {
      (this.#early ??= []).push(Buffer.from(chunk));
      spent(chunk);
      return false;
    }
    // Written as it is: the codec allocated the chunk's buffer for this read and does not reuse it.
    // A recycled chunk's payload goes back once written (callbacks come in write order).
    let ok: boolean;
    if (isLent(chunk)) {
      (this.#writing ??= []).push(chunk);
      ok = socket.write(chunk, this.#onWritten);
    } else {
      ok = socket.write(chunk);
    }
    if (ok && !this.#waitingDrain) return true;
    this.#waitingDrain = true;
    return false;
  }

  /** Recycled payloads written to the socket and not yet done, oldest first. */
  #writing: Buffer[] | null = null;

  readonly #onWritten = (err?: Error | null): void => {
    const c = this.#writing?.shift();
    // A failed write may not have let go of the bytes: that chunk is left to the collector.
    if (c !== undefined && err == null) spent(c);
  };

  /** The body that waited for the socket: written now; true when the socket can take more. */
  protected flushEarly(socket: Socket): boolean {
    const early = this.#early;
    if (early === undefined) return true;
    this.#early = undefined;
    let ok = true;
    for (const c of early) ok = socket.write(c);
    if (!ok) this.#waitingDrain = true;
    return ok;
  }

  readonly #onSocketDrain = (): void => {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    this.stream?.resume();
  };

  onEnd(_trailers: HeaderList | undefined): void {
    this.gotEnd = true;
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) socket.end();
  }

  onReset(r: StreamReset): void {
    if (this.streamGone) return;
    this.streamGone = true;
    this.fail('MESH_STREAM_RESET', r.error.message);
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) resetAndDestroy(socket);
  }
}

/** The client proxy's side: the accepted client socket and a CONNECT stream sent on a tunnel session. */
class ClientJoin extends Join implements ResponseListener {
  #stream: ClientStream | undefined;
  #established = false;
  #retries = 0;
  protected readonly side = 'client';

  constructor(
    socket: Socket,
    private readonly target: SocketAddress,
    private readonly session: () => Dispatcher | undefined,
    private readonly fallback: (() => Promise<ForwardResult>) | undefined,
    private readonly done: (r: ForwardResult) => void,
    first: Dispatcher | undefined,
  ) {
    super();
    this.attach(socket);
    this.#open(first ?? this.session());
  }

  protected get stream(): ClientStream | undefined {
    return this.#stream;
  }

  #open(d: Dispatcher | undefined): void {
    if (d === undefined) return this.#fallBack();
    this.streamGone = false;
    this.#stream = d.request(connectHead(this.target), false, this);
    // A client that sent nothing but its FIN (a paused socket still reports an end with nothing
    // before it) did so on a stream refused since: its end goes on this one.
    if (this.sentEnd) this.#stream.end();
  }

  /** No tunnel to this peer proxy after all: the connection is handed, still unread, to the fallback. */
  #fallBack(): void {
    const socket = this.socket!;
    this.detach();
    if (this.fallback === undefined) {
      resetAndDestroy(socket);
      return this.done({ error: 'MESH_STREAM_RESET', detail: 'no tunnel session to the peer proxy', bytesFromClient: 0, bytesFromServer: 0 });
    }
    this.fallback().then(this.done);
  }

  readonly #retry = (): void => {
    if (!this.socket!.destroyed) this.#open(this.session());
  };

  onContinue(): void {}

  onResponse(head: ResponseHead, endStream: boolean): void {
    const socket = this.socket!;
    if (head.status >= 200 && head.status < 300) {
      this.#established = true;
      this.flow();
      if (endStream) this.onEnd(undefined);
      return;
    }
    // The server proxy could not reach its workload: the client sees what it would have without the mesh, a reset.
    this.streamGone = true;
    const code = field(head.headers, ERROR_HEADER);
    this.fail('MESH_STREAM_RESET', `peer proxy answered ${head.status}${code === undefined ? '' : `: ${code}`}`);
    // Our side of the stream is still open (nothing was sent on it): closed too.
    this.#stream?.reset(reset('MESH_CLIENT_RESET', 'tunnel refused'));
    if (!socket.destroyed) resetAndDestroy(socket);
  }

  override onReset(r: StreamReset): void {
    const socket = this.socket!;
    // Refused before processing (GOAWAY, REFUSED_STREAM): nothing was sent, so it goes again on a session that takes it.
    if (!this.#established && r.error.code === 'MESH_H2_REFUSED' && this.#retries < MAX_REFUSED_RETRIES && !socket.destroyed) {
      this.#retries++;
      this.streamGone = true;
      // Next turn: the session that refused it has closed by then and is out of the pool (or its
      // peer marked as one that takes no tunnels), so the retry does not find it again.
      return void setImmediate(this.#retry);
    }
    // A session that could not be made is a failed connect, as the per-connection dial's was.
    if (!this.#established && r.h2Code === H2_REFUSED_STREAM && r.error.code !== 'MESH_H2_REFUSED') this.fail(r.error.code, r.error.message);
    super.onReset(r);
  }

  protected finished(): void {
    const s = this.socket!;
    this.done({ error: this.error, detail: this.detail, bytesFromClient: s.bytesRead, bytesFromServer: s.bytesWritten });
  }
}

/**
 * Forwards `client` through a tunnel session: `first`, or what `session()` hands out (dialled
 * on first need; undefined when the peer proxy is known to take no tunnels, and then
 * `fallback` forwards the connection, unread, some other way). Resolves once the client's
 * socket is closed.
 */
export function forwardTunnel(
  client: Socket,
  target: SocketAddress,
  session: () => Dispatcher | undefined,
  fallback?: () => Promise<ForwardResult>,
  first?: Dispatcher,
): Promise<ForwardResult> {
  if (client.destroyed) return Promise.resolve({ error: 'MESH_STREAM_RESET', detail: 'client closed before forwarding began', bytesFromClient: 0, bytesFromServer: 0 });
  return new Promise((resolve) => void new ClientJoin(client, target, session, fallback, resolve, first));
}

// ---- the server proxy's side ----

/** One tunnelled connection the server proxy received, as the inbound stack accounts it. */
export interface TunnelledConnection {
  /** The workload's address for it (the session's destination address, the stream's port). */
  target: SocketAddress;
  /** Called once, when the stream and the app's socket (if one was made) are both done. */
  closed(r: ForwardResult): void;
}

export interface TunnelHost {
  /**
   * A CONNECT arrived for `target`: how it is accounted, or why it is refused (no descriptor
   * to spare). Called before the workload is dialled.
   */
  open(target: SocketAddress): TunnelledConnection | { refused: ProxyErrorCode; why: string };
  /** Dials the workload (plain TCP), failing with a coded ProxyError. */
  dial(target: SocketAddress): Promise<Socket>;
}

/** The server proxy's side of one stream: a CONNECT and the socket to the workload. */
class ServerJoin extends Join implements RequestListener {
  protected readonly side = 'app';
  #closedReported = false;

  constructor(
    private readonly s: ServerStream,
    private readonly conn: TunnelledConnection,
  ) {
    super();
  }

  protected get stream(): ServerStream {
    return this.s;
  }

  connected(socket: Socket): void {
    if (this.streamGone) {
      // The client side went while the workload was dialled.
      socket.destroy();
      return this.report();
    }
    const endedBefore = this.gotEnd;
    this.attach(socket);
    this.s.respond({ status: 200, reason: '', version: 20, headers: [] }, false);
    this.flow();
    // What the client sent (and its end) waited for this socket; the stream, paused, goes on once it drains.
    const more = this.flushEarly(socket);
    if (endedBefore) socket.end();
    else if (more) this.s.resume();
  }

  dialFailed(e: ProxyError): void {
    this.fail(e.code, e.message);
    if (!this.streamGone) {
      this.streamGone = true;
      answer(this.s, statusFor(e), [ERROR_HEADER, e.code]);
    }
    this.report();
  }

  protected finished(): void {
    this.report();
  }

  report(): void {
    if (this.#closedReported) return;
    this.#closedReported = true;
    const s = this.socket;
    // From the client's side of things: what the app was sent came from the client.
    this.conn.closed({ error: this.error, detail: this.detail, bytesFromClient: s?.bytesWritten ?? 0, bytesFromServer: s?.bytesRead ?? 0 });
  }
}

/** Serves a tunnel session's streams: each CONNECT becomes a connection to the workload. */
export class TunnelServer implements ServerHandler {
  constructor(
    private readonly destination: SocketAddress,
    private readonly host: TunnelHost,
    /** The proxy's own listening ports: not the workload's (a stream to one would loop, or reach admin). */
    private readonly proxyPorts: ReadonlySet<number> = new Set(),
  ) {}

  onRequest(s: ServerStream): void {
    const port = s.head.method === 'CONNECT' ? authorityPort(s.head.target) : 0;
    if (port === 0) {
      const why = s.head.method === 'CONNECT' ? `no port in CONNECT authority "${s.head.target}"` : `${s.head.method} on a tunnel session`;
      return refuse(s, 400, 'MESH_CLIENT_PROTOCOL', why);
    }
    if (this.proxyPorts.has(port)) return refuse(s, 403, 'MESH_CONNECT_REFUSED', `port ${port} is the proxy's own`);
    const target: SocketAddress = { ...this.destination, port };
    const conn = this.host.open(target);
    if ('refused' in conn) return refuse(s, 503, conn.refused, conn.why);
    const join = new ServerJoin(s, conn);
    s.listen(join);
    this.host.dial(target).then(
      (socket) => join.connected(socket),
      (e: unknown) => join.dialFailed(e instanceof ProxyError ? e : new ProxyError('MESH_CONNECT_FAILED', String(e))),
    );
  }
}

/**
 * A refusal: the complete answer, then RST_STREAM(NO_ERROR) (RFC 9113 §8.1), since a CONNECT's
 * request side stays open after its response ends and nothing will be read from it.
 */
function answer(s: ServerStream, status: number, headers: HeaderList): void {
  s.respond({ status, reason: '', version: 20, headers }, true);
  s.reset({ h2Code: H2_NO_ERROR, error: new ProxyError('MESH_CONNECT_FAILED', 'tunnel refused') });
}

/** A stream refused before anything was dialled: its body is dropped, the answer says why. */
function refuse(s: ServerStream, status: number, code: ProxyErrorCode, why: string): void {
  s.listen(IGNORE);
  answer(s, status, [ERROR_HEADER, code, 'mesh-proxy-reason', why]);
}

/** A listener for a stream answered at once: its body is dropped. */
const IGNORE: RequestListener = {
  onData: () => true,
  onEnd: () => {},
  onReset: () => {},
  onWritable: () => {},
};
