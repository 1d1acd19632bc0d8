// Heads to bytes, with the body's framing always chosen here, never left to
// whatever the header list happens to hold: a valid Content-Length means
// identity; otherwise chunked on HTTP/1.1, or close-delimited for an HTTP/1.0
// client. Fields that frame a connection (Transfer-Encoding, Connection and an
// unusable Content-Length) are dropped from the given list and written by us.
import type { H1Output } from './batch.js';
import type { HeaderList, RequestHead, ResponseHead } from '../message/types.js';
import { sameLower } from '../headers.js';

export type Framing = 'none' | 'length' | 'chunked' | 'close';

/** Standard reason phrases for the statuses the codec itself answers or when a head has none. */
const REASONS: Record<number, string> = {
  100: 'Continue', 101: 'Switching Protocols', 200: 'OK', 204: 'No Content', 304: 'Not Modified',
  400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

export function reasonFor(status: number): string {
  return REASONS[status] ?? '';
}

/** The single valid Content-Length of a list, -1 when none, -2 when present but unusable (several, a list, not digits). */
export function contentLengthOf(headers: HeaderList): number {
  let found = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (!sameLower(name, 'content-length')) continue;
    if (found !== -1) return -2;
    const v = headers[i + 1]!;
    if (v.length === 0 || v.length > 15) return -2;
    for (let k = 0; k < v.length; k++) {
      const c = v.charCodeAt(k);
      if (c < 0x30 || c > 0x39) return -2;
    }
    found = Number(v);
  }
  return found;
}

/** Is this field written by the codec rather than copied from the list? */
function framingField(name: string, dropLength: boolean): boolean {
  switch (name.length) {
    case 10:
      return sameLower(name, 'connection');
    case 14:
      return dropLength && sameLower(name, 'content-length');
    case 17:
      return sameLower(name, 'transfer-encoding');
    default:
      return false;
  }
}

function hasHost(headers: HeaderList): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (sameLower(name, 'host')) return true;
  }
  return false;
}

function fields(headers: HeaderList, dropLength: boolean): string {
  let out = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (framingField(name, dropLength)) continue;
    out += `${name}: ${headers[i + 1]!}\r\n`;
  }
  return out;
}

export interface Serialized {
  /** The head as a latin1 string (one write with the first body chunk). */
  head: string;
  framing: Framing;
  /** The connection closes after this message (responses). */
  close: boolean;
}

/**
 * A request head for an upstream connection. We speak our own version
 * (RFC 9110 §2.5: HTTP/1.1) whatever the client spoke. A request with a body
 * and no usable length goes chunked, whatever its method: a GET with a body
 * must arrive framed, or its body would be read as the next request.
 */
export function serializeRequest(head: RequestHead, bodyless: boolean): Serialized {
  const cl = contentLengthOf(head.headers);
  let framing: Framing;
  let extra = '';
  let dropLength = cl < 0;
  if (bodyless) {
    framing = 'none';
    // A length promising bytes that will never come would hang the server.
    if (cl > 0) dropLength = true;
  } else if (cl >= 0) framing = cl === 0 ? 'none' : 'length';
  else {
    framing = 'chunked';
    extra = 'Transfer-Encoding: chunked\r\n';
  }
  // Our pool keeps the connection; said the way Node's client says it, so an
  // app sees the same hop-by-hop fields with or without the mesh.
  // HTTP/1.1 requires a Host (RFC 9112 §3.2); an HTTP/1.0 client may have sent none.
  const host = head.version === 10 && !hasHost(head.headers) ? 'Host: \r\n' : '';
  const str = `${head.method} ${head.target} HTTP/1.1\r\n${host}${fields(head.headers, dropLength)}Connection: keep-alive\r\n${extra}\r\n`;
  return { head: str, framing, close: false };
}

/** Does a response to this request method with this status carry a body at all? */
export function responseHasBody(method: string, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
}

/**
 * A response head toward a client. `clientVersion` and `keepAlive` decide the
 * Connection field and whether a body without length must be delimited by
 * closing (HTTP/1.0 clients cannot read chunked). Returns framing 'close' when
 * the connection has to close after this response.
 */
export function serializeResponse(head: ResponseHead, endStream: boolean, method: string, clientVersion: number, keepAlive: boolean, keepAliveS = 60): Serialized {
  const status = head.status;
  const reason = head.reason !== '' ? head.reason : reasonFor(status);
  let framing: Framing;
  let extra = '';
  let dropLength = false;
  if (!responseHasBody(method, status)) {
    // HEAD keeps the Content-Length describing the GET; 1xx/204/304 carry none of ours.
    framing = 'none';
    dropLength = status < 200 || status === 204;
  } else {
    const cl = contentLengthOf(head.headers);
    dropLength = cl < 0;
    if (cl >= 0) framing = cl === 0 ? 'none' : 'length';
    else if (endStream) {
      framing = 'none';
      extra = 'Content-Length: 0\r\n';
    } else if (clientVersion === 11) {
      framing = 'chunked';
      extra = 'Transfer-Encoding: chunked\r\n';
    } else framing = 'close';
  }
  const close = !keepAlive || framing === 'close';
  // Connection fields first, then framing, with the case Node's server writes:
  // clients and tests that know an unmeshed Node app see the same response.
  if (status >= 200) {
    if (close) extra = `Connection: close\r\n${extra}`;
    else extra = `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveS}\r\n${extra}`;
  }
  const str = `HTTP/1.1 ${status} ${reason}\r\n${fields(head.headers, dropLength)}${extra}\r\n`;
  return { head: str, framing, close };
}

/** The size line of one chunk. */
export function chunkHeader(n: number): string {
  return `${n.toString(16)}\r\n`;
}

/** The last chunk and the trailer section. */
export function lastChunk(trailers: HeaderList | undefined): string {
  if (trailers === undefined || trailers.length === 0) return '0\r\n\r\n';
  let out = '0\r\n';
  for (let i = 0; i < trailers.length; i += 2) {
    const name = trailers[i]!;
    // Trailers may not frame the message (RFC 9110 §6.5.1).
    if (framingField(name, true)) continue;
    out += `${name}: ${trailers[i + 1]!}\r\n`;
  }
  return `${out}\r\n`;
}

/** Minimal error answer from the codec itself (bad request, timeout). */
export function errorResponse(status: number): string {
  return `HTTP/1.1 ${status} ${reasonFor(status)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`;
}

/**
 * One body chunk on a connection's output in the message's framing (both sides
 * of the codec write bodies the same way); false when the socket is full.
 */
export function writeFramed(out: H1Output, framing: Framing, chunk: Buffer): boolean {
  switch (framing) {
    case 'chunked': {
      if (chunk.length === 0) return true; // an empty chunk would end the body
      out.text(chunkHeader(chunk.length));
      const ok = out.bytes(chunk);
      out.text('\r\n');
      return ok;
    }
    case 'length':
    case 'close':
      return out.bytes(chunk);
    default:
      return true; // a body where none may be (HEAD, 204, 304): dropped
  }
}
