// The request seam: what every codec turns bytes into and back, and the one
// shape the forwarder joins. A request and a response are values the proxy
// owns, not Node stream objects: a head, a body delivered chunk by chunk with
// backpressure, optional trailers, and an end or a reset that carries a code.
//
//   server codec (h1 or h2, bytes from a client)   → ServerStream per request
//   client codec (h1 pool or h2 connection, bytes to a server) ← ClientStream per request
//   forwarder: ServerStream ⇄ ClientStream, observers (metrics, tap, ...) on the side
//
// Listeners are objects with methods, set once per request (no closures per chunk).
import type { ProxyError } from '../errors.js';

/**
 * Header fields in the order they came: [name, value, name, value, ...].
 * HTTP/1 keeps each name's case as written; HTTP/2 names are lower case.
 * Pseudo-headers (":path", ...) are never in this list; they are head fields.
 */
export type HeaderList = string[];

/** 10 = HTTP/1.0, 11 = HTTP/1.1, 20 = HTTP/2. */
export type HttpVersion = 10 | 11 | 20;

export interface RequestHead {
  method: string;
  /**
   * HTTP/1: the request-target as on the request line, untouched: origin-form
   * "/p?q", absolute-form "http://h/p", authority-form "h:443" (CONNECT) or "*".
   * HTTP/2: the :path (the :authority for CONNECT).
   */
  target: string;
  /** HTTP/2's :scheme; undefined for HTTP/1. */
  scheme: string | undefined;
  /** HTTP/2's :authority; undefined for HTTP/1 (Host is among the headers). */
  authority: string | undefined;
  version: HttpVersion;
  headers: HeaderList;
}

export interface ResponseHead {
  status: number;
  /** HTTP/1's reason phrase as received ("" when none, and always for HTTP/2). */
  reason: string;
  version: HttpVersion;
  headers: HeaderList;
}

/**
 * Why a message stopped before its end. `h2Code` is the RST_STREAM code to
 * send (or that was received); `error` is the proxy's coded error, the same
 * string in logs, metrics and the mesh-proxy-error header.
 */
export interface StreamReset {
  h2Code: number;
  error: ProxyError;
}

/** HTTP/2 error codes (RFC 9113 §7) that the proxy sends or maps. */
export const H2_NO_ERROR = 0x0;
export const H2_PROTOCOL_ERROR = 0x1;
export const H2_INTERNAL_ERROR = 0x2;
export const H2_FLOW_CONTROL_ERROR = 0x3;
export const H2_STREAM_CLOSED = 0x5;
export const H2_FRAME_SIZE_ERROR = 0x6;
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_COMPRESSION_ERROR = 0x9;
export const H2_ENHANCE_YOUR_CALM = 0xb;

/** The body of a message being received: where a codec delivers it. */
export interface BodyListener {
  /**
   * A chunk of body. The chunk may be a view into the codec's read buffer:
   * use it (write it on) before returning, or copy it. Returns false when the
   * listener cannot take more: the codec stops reading this message's body
   * until its stream's resume() is called.
   */
  onData(chunk: Buffer): boolean;
  /** The body is complete; `trailers` when the message carried any. */
  onEnd(trailers: HeaderList | undefined): void;
  /** The message was cut: the peer reset it, the connection was lost, or it broke the protocol. */
  onReset(reset: StreamReset): void;
}

/** A server codec's view of the forwarder for one request. */
export interface RequestListener extends BodyListener {
  /** The response side can take more after write() returned false. */
  onWritable(): void;
}

/**
 * One request received by a server codec (from a client). The codec calls
 * ServerHandler.onRequest with it; the handler must call listen() before it
 * returns, and then owns the exchange until it ends or resets the response.
 */
export interface ServerStream {
  readonly head: RequestHead;
  /** True when no request body follows the head (nothing to read; onEnd comes at once or has come). */
  readonly bodyless: boolean;
  /** The client asked for `Expect: 100-continue` and has not been answered yet. */
  readonly expectsContinue: boolean;
  listen(l: RequestListener): void;
  /** The request body listener can take more (after onData returned false). */
  resume(): void;
  /** An interim 100 Continue to the client. */
  sendContinue(): void;
  /** The response head; endStream when no body follows. */
  respond(head: ResponseHead, endStream: boolean): void;
  /** Response body; false when the client is slow: wait for onWritable. */
  write(chunk: Buffer): boolean;
  end(trailers?: HeaderList): void;
  /** Aborts the exchange toward the client: RST_STREAM (h2) or a reset connection (h1). */
  reset(reset: StreamReset): void;
}

export interface ServerHandler {
  onRequest(stream: ServerStream): void;
}

/** A client codec's view of the forwarder for one request sent upstream. */
export interface ResponseListener extends BodyListener {
  /** The server sent 100 Continue. */
  onContinue(): void;
  /** The final response head; endStream when no body follows. */
  onResponse(head: ResponseHead, endStream: boolean): void;
  /** The request side can take more after write() returned false. */
  onWritable(): void;
}

/** One request being sent by a client codec (to a server). */
export interface ClientStream {
  /** Request body; false when the server is slow: wait for onWritable. */
  write(chunk: Buffer): boolean;
  end(trailers?: HeaderList): void;
  /** Aborts the request upstream (RST_STREAM on h2; on h1 the connection is closed, never pooled). */
  reset(reset: StreamReset): void;
  /** The response body listener can take more (after onData returned false). */
  resume(): void;
}

/**
 * Sends requests somewhere: an HTTP/1 keep-alive pool to one endpoint, or one
 * HTTP/2 connection. A request that cannot be sent (connect refused, pool
 * closed, GOAWAY) fails through l.onReset, never by throwing.
 */
export interface Dispatcher {
  request(head: RequestHead, bodyless: boolean, l: ResponseListener): ClientStream;
}
