// Client role: one HTTP/2 connection the caller dialled (plain or mTLS, the
// mesh connection header already written) as a Dispatcher. Requests beyond
// the peer's MAX_CONCURRENT_STREAMS wait in a queue; requests the peer never
// processed (GOAWAY, REFUSED_STREAM, queued at close) fail with
// MESH_H2_REFUSED so the caller can retry them on another connection.
import type { Socket } from 'node:net';
import {
  H2_CANCEL, H2_INTERNAL_ERROR, H2_PROTOCOL_ERROR, H2_REFUSED_STREAM, H2_STREAM_CLOSED,
  type ClientStream, type Dispatcher, type HeaderList, type RequestHead, type ResponseHead, type ResponseListener, type StreamReset,
} from '../message/types.js';
import { H2Connection, type H2Options } from './connection.js';
import { appendFields, badField, checkTrailers, H2Stream, streamReset } from './stream.js';
import { parseLength } from './server.js';
import { sameLower } from '../headers.js';

const MAX_STREAM_ID = 0x7fffffff;

export class H2ClientConnection extends H2Connection implements Dispatcher {
  #nextId = 1;
  readonly #queue: H2Stream[] = [];

  constructor(socket: Socket, options: H2Options = {}) {
    super(socket, 'client', options);
    this.listen();
  }

  /** Can take new requests (false after GOAWAY either way, close, loss, or stream ids running out). */
  isAvailable(): boolean {
    return !this.dead && !this.goingAway && this.peerGoaway < 0 && this.#nextId <= MAX_STREAM_ID;
  }

  /** Streams open plus queued: for a caller balancing over connections. */
  get load(): number {
    return this.streams.size + this.#queue.length;
  }

  request(head: RequestHead, bodyless: boolean, l: ResponseListener): ClientStream {
    const s = new H2Stream(this);
    s.head = head;
    s.l = l;
    s.bodyless = bodyless;
    s.noBody = head.method === 'HEAD';
    s.duplex = head.method === 'CONNECT' && this.options.peer === 'tunnel';
    if (!this.isAvailable()) {
      s.closed = true;
      setImmediate(refuse, s); // never from inside request(): the caller has not got the stream yet
      return s;
    }
    if (this.#queue.length === 0 && this.streams.size < this.peerMaxStreams) this.#open(s);
    else this.#queue.push(s);
    return s;
  }

  #open(s: H2Stream): void {
    s.id = this.#nextId;
    this.#nextId += 2;
    s.sendWindow = this.peerInitialWindow; // a queued stream missed SETTINGS changes while it waited
    this.streams.set(s.id, s);
    this.sendHeaders(s, requestFields(s.head), s.bodyless);
    if (s.bodyless) s.localEnded = true;
    else if (s.outQ !== null || s.endQueued) {
      this.blocked(s);
      this.pumpAll();
    }
    if (this.#nextId > MAX_STREAM_ID) this.close();
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id >= this.#nextId;
  }

  protected onHead(id: number, endStream: boolean, fields: string[], tooLarge: boolean, valuesOk: boolean): void {
    const s = this.streams.get(id);
    if (s === undefined) {
      if (this.isIdle(id)) this.fail(H2_PROTOCOL_ERROR, 'HEADERS on a stream we did not open');
      return;
    }
    if (s.remoteEnded) return this.streamError(s, H2_STREAM_CLOSED, 'HEADERS after END_STREAM');
    if (s.discard || s.starved) {
      // Nobody listens any more (see H2Stream.reset): its reset may still be on its way.
      if (endStream) s.remoteEnd(undefined);
      return;
    }
    if (tooLarge) {
      this.resetStream(s, H2_CANCEL);
      return s.l!.onReset(streamReset(H2_CANCEL, 'MESH_HEADERS_TOO_LARGE', `response head beyond ${this.maxHeaderListSize} octets`));
    }
    if (s.headDone) {
      if (!endStream) return this.streamError(s, H2_PROTOCOL_ERROR, 'trailers without END_STREAM');
      const bad = checkTrailers(fields, valuesOk);
      if (bad !== undefined) return this.streamError(s, H2_PROTOCOL_ERROR, bad);
      if (s.expectLen >= 0 && s.recvLen !== s.expectLen) return this.streamError(s, H2_PROTOCOL_ERROR, 'body length differs from content-length');
      return s.remoteEnd(fields);
    }
    const head = parseResponse(s, fields, valuesOk);
    if (typeof head === 'string') return this.streamError(s, H2_PROTOCOL_ERROR, head);
    const l = s.l as ResponseListener;
    if (head.status < 200) {
      if (endStream || head.status === 101) return this.streamError(s, H2_PROTOCOL_ERROR, 'bad interim response');
      if (head.status === 100) l.onContinue();
      return; // other 1xx (103 Early Hints) are informational only
    }
    if (endStream && s.expectLen > 0) return this.streamError(s, H2_PROTOCOL_ERROR, 'content-length on a response without body');
    s.headDone = true;
    if (endStream) s.remoteEnded = true;
    l.onResponse(head, endStream);
    if (endStream) s.drainIn();
  }

  protected onPeerLimits(): void {
    if (this.peerGoaway >= 0) {
      // Streams above last-stream-id were never processed: safe to retry elsewhere.
      const refused = streamReset(H2_REFUSED_STREAM, 'MESH_H2_REFUSED', 'the peer went away before processing the stream');
      for (const s of [...this.streams.values()]) if (s.id > this.peerGoaway) s.cut(refused, true);
    }
    if (!this.isAvailable()) return this.#refuseQueued(streamReset(H2_REFUSED_STREAM, 'MESH_H2_REFUSED', 'connection closing before the stream was sent'));
    this.#dequeue();
  }

  #dequeue(): void {
    while (this.#queue.length > 0 && this.streams.size < this.peerMaxStreams && this.isAvailable()) this.#open(this.#queue.shift()!);
  }

  #refuseQueued(r: StreamReset): void {
    while (this.#queue.length > 0) {
      const s = this.#queue.shift()!;
      s.closed = true;
      s.l?.onReset(r);
    }
  }

  protected lostReset(code: number, why: string, abuse: boolean, lost = false): StreamReset {
    if (code === H2_REFUSED_STREAM) return streamReset(code, 'MESH_H2_REFUSED', why);
    // A tunnel session whose peer closed it without a word of HTTP/2: nothing was processed
    // (a peer proxy too old to know tunnels refuses the connection header): safe to send again.
    if (lost && this.options.peer === 'tunnel' && !this.peerSpoke) return streamReset(H2_REFUSED_STREAM, 'MESH_H2_REFUSED', `tunnel session closed before the peer spoke HTTP/2: ${why}`);
    const c = abuse ? 'MESH_H2_ABUSE' : code === 0x1 || code === 0x9 ? 'MESH_UPSTREAM_PROTOCOL' : 'MESH_UPSTREAM_RESET';
    // A lost connection is a failure to the client: INTERNAL_ERROR, as hyper sends.
    // CANCEL would read as a clean end to node:http2 clients, and a cut body as complete.
    if (lost && (code === 0 || code === H2_CANCEL)) return streamReset(H2_INTERNAL_ERROR, c, why);
    return streamReset(code === 0 ? H2_CANCEL : code, c, why);
  }

  protected onStreamDone(s: H2Stream): void {
    if (s.id === 0) {
      const i = this.#queue.indexOf(s);
      if (i >= 0) this.#queue.splice(i, 1);
      return;
    }
    if (this.#queue.length > 0) this.#dequeue();
  }

  protected idle(): boolean {
    return this.#queue.length === 0;
  }

  protected onTeardown(): void {
    this.#refuseQueued(streamReset(H2_REFUSED_STREAM, 'MESH_H2_REFUSED', 'connection gone before the stream was sent'));
  }
}

function refuse(s: H2Stream): void {
  s.l?.onReset(streamReset(H2_REFUSED_STREAM, 'MESH_H2_REFUSED', 'connection not available'));
}

/**
 * The request's header list for encoding: pseudo-headers first. An HTTP/1
 * head has no :authority: its Host becomes it (RFC 9113 §8.3.1), and an
 * absolute-form target is split into scheme, authority and path.
 */
export function requestFields(h: RequestHead): string[] {
  const list = [':method', h.method];
  let authority = h.authority;
  let skip: string | undefined;
  if (authority === undefined) {
    for (let i = 0; i < h.headers.length; i += 2) {
      if (sameLower(h.headers[i]!, 'host')) {
        authority = h.headers[i + 1]!;
        skip = 'host';
        break;
      }
    }
  }
  if (h.method === 'CONNECT') {
    list.push(':authority', authority ?? h.target);
  } else {
    let scheme = h.scheme ?? 'http';
    let path = h.target;
    const c = path.charCodeAt(0);
    if (c !== 47 && path !== '*') {
      const sep = path.indexOf('://');
      if (sep > 0) {
        scheme = path.slice(0, sep).toLowerCase();
        const slash = path.indexOf('/', sep + 3);
        authority = path.slice(sep + 3, slash < 0 ? path.length : slash);
        path = slash < 0 ? '/' : path.slice(slash);
      }
    }
    list.push(':scheme', scheme);
    if (authority !== undefined) list.push(':authority', authority);
    list.push(':path', path);
  }
  appendFields(list, h.headers, skip);
  return list;
}

/** A response head from decoded fields (RFC 9113 §8.3.2); a string says why it is malformed. */
export function parseResponse(s: H2Stream, fields: string[], valuesChecked = false): ResponseHead | string {
  if (fields[0] !== ':status') return 'missing :status';
  const v = fields[1]!;
  const status = v.length === 3 ? parseLength(v) : -1;
  if (status < 100) return 'invalid :status';
  const headers: HeaderList = [];
  let expectLen = -1;
  for (let i = 2; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.charCodeAt(0) === 58) return `unexpected ${name}`;
    const bad = badField(name, value, valuesChecked);
    if (bad !== undefined) return bad;
    if (name === 'content-length') {
      const n = parseLength(value);
      if (n < 0 || (expectLen >= 0 && n !== expectLen)) return 'invalid content-length';
      expectLen = n;
    }
    headers.push(name, value);
  }
  // A HEAD response's content-length, 204 and 304 describe no body here.
  if (status >= 200 && !s.noBody && status !== 204 && status !== 304) s.expectLen = expectLen;
  return { status, reason: '', version: 20, headers };
}
