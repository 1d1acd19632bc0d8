// Server role: a client's streams become ServerStreams for the handler.
// Request heads are validated per RFC 9113 §8.3; a malformed one costs its
// stream (RST_STREAM PROTOCOL_ERROR), never the connection.
import type { Socket } from 'node:net';
import {
  H2_NO_ERROR, H2_PROTOCOL_ERROR, H2_REFUSED_STREAM, H2_STREAM_CLOSED, H2_INTERNAL_ERROR,
  type HeaderList, type RequestHead, type ServerHandler, type StreamReset,
} from '../message/types.js';
import { H2Connection, type H2Options } from './connection.js';
import { badField, checkTrailers, H2Stream, streamReset } from './stream.js';

export class H2ServerConnection extends H2Connection {
  constructor(
    socket: Socket,
    private readonly handler: ServerHandler,
    options: H2Options = {},
  ) {
    super(socket, 'server', options);
    this.listen();
  }

  protected isIdle(id: number): boolean {
    return id > this.lastPeerId || (id & 1) === 0;
  }

  protected onHead(id: number, endStream: boolean, fields: string[], tooLarge: boolean, valuesOk: boolean): void {
    const s = this.streams.get(id);
    if (s !== undefined) return this.#trailers(s, endStream, fields, tooLarge, valuesOk);
    if ((id & 1) === 0) return this.fail(H2_PROTOCOL_ERROR, 'client opened an even stream id');
    if (id <= this.lastPeerId) return; // a stream already closed: its block was decoded, nothing else to do
    this.lastPeerId = id;
    if (this.goingAway || this.peerGoaway >= 0 || this.streams.size >= this.maxStreams) {
      this.w.rst(id, H2_REFUSED_STREAM);
      return this.schedule();
    }
    if (tooLarge) {
      // The 431 answer of HTTP/1, on this stream only (the HPACK table stayed in sync).
      this.w.headers(id, this.encoder.encode([':status', '431', 'mesh-proxy-error', 'MESH_HEADERS_TOO_LARGE']), true, this.peerMaxFrame);
      if (!endStream) this.w.rst(id, H2_NO_ERROR);
      return this.schedule();
    }
    const st = new H2Stream(this);
    st.id = id;
    const bad = parseRequest(st, fields, endStream, valuesOk);
    if (bad !== undefined) {
      this.w.rst(id, H2_PROTOCOL_ERROR);
      return this.schedule();
    }
    this.streams.set(id, st);
    if (endStream) st.remoteEnded = true;
    if (this.options.peer === 'tunnel' && st.head.method === 'CONNECT') st.duplex = true;
    this.handler.onRequest(st);
    if (st.l === null && !st.closed) return this.resetStream(st, H2_INTERNAL_ERROR); // the handler broke the contract
    if (endStream) st.drainIn();
  }

  #trailers(s: H2Stream, endStream: boolean, fields: string[], tooLarge: boolean, valuesOk: boolean): void {
    if (s.remoteEnded) return this.streamError(s, H2_STREAM_CLOSED, 'HEADERS after END_STREAM');
    if (!endStream) return this.streamError(s, H2_PROTOCOL_ERROR, 'trailers without END_STREAM');
    if (tooLarge) return this.streamError(s, H2_PROTOCOL_ERROR, 'trailers too large');
    const bad = checkTrailers(fields, valuesOk);
    if (bad !== undefined) return this.streamError(s, H2_PROTOCOL_ERROR, bad);
    if (s.expectLen >= 0 && s.recvLen !== s.expectLen) return this.streamError(s, H2_PROTOCOL_ERROR, 'body length differs from content-length');
    s.remoteEnd(fields);
  }

  protected onPeerLimits(): void {}

  protected lostReset(code: number, why: string, abuse: boolean): StreamReset {
    return streamReset(code === 0 ? 0x8 : code, abuse ? 'MESH_H2_ABUSE' : code === 0x1 || code === 0x9 ? 'MESH_CLIENT_PROTOCOL' : 'MESH_CLIENT_RESET', why);
  }

  protected onStreamDone(): void {}

  protected idle(): boolean {
    return true;
  }

  protected onTeardown(): void {}
}

/**
 * Fills a stream's head from a decoded field list (RFC 9113 §8.3.1).
 * Returns why it is malformed, or undefined.
 */
export function parseRequest(s: H2Stream, fields: string[], endStream: boolean, valuesChecked = false): string | undefined {
  let method: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string | undefined;
  const headers: HeaderList = [];
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.charCodeAt(0) === 58) {
      if (regular) return 'pseudo-header after a regular field';
      if (name === ':method' && method === undefined) method = value;
      else if (name === ':scheme' && scheme === undefined) scheme = value;
      else if (name === ':authority' && authority === undefined) authority = value;
      else if (name === ':path' && path === undefined) path = value;
      else return `unexpected or repeated ${name}`;
      continue;
    }
    regular = true;
    const bad = badField(name, value, valuesChecked);
    if (bad !== undefined) return bad;
    if (name === 'content-length') {
      const n = parseLength(value);
      if (n < 0 || (s.expectLen >= 0 && n !== s.expectLen)) return 'invalid content-length';
      s.expectLen = n;
    } else if (name === 'expect' && value.toLowerCase() === '100-continue') {
      s.expectsContinue = true;
    }
    headers.push(name, value);
  }
  if (method === undefined || method.length === 0) return 'missing :method';
  let target: string;
  if (method === 'CONNECT') {
    if (authority === undefined || scheme !== undefined || path !== undefined) return 'CONNECT needs :authority only';
    target = authority;
  } else {
    if (scheme === undefined || path === undefined || path.length === 0) return 'missing :scheme or :path';
    target = path;
  }
  if (endStream && s.expectLen > 0) return 'content-length on a request without body';
  if (endStream) s.expectsContinue = false;
  s.bodyless = endStream;
  s.head = { method, target, scheme, authority, version: 20, headers } satisfies RequestHead;
  return undefined;
}

/** A content-length value: digits only (no sign, no list); -1 when invalid. */
export function parseLength(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
