// An incremental HTTP/1 parser (RFC 9112) for requests or responses, fed the
// Buffers a socket delivers. It calls a listener object, never allocates per
// chunk beyond body slices, and refuses every framing ambiguity a proxy could
// be smuggled through: one reading of a message, or an error.
//
// execute() stops (returns the offset reached) after each complete message,
// after a tunnel's head, when onBody returns false and after stop(): the
// caller owns the remaining bytes and calls execute() again when it is ready.
import { Buffer } from 'node:buffer';
import { ProxyError, type ProxyErrorCode } from '../errors.js';
import type { HeaderList, HttpVersion, RequestHead, ResponseHead } from '../message/types.js';
import { CR, LF } from './chars.js';
import { chunkError, parseChunkSize, partialChunkLine } from './chunk.js';
import { HeadScan, latin1, parseHeaderLine, parseRequestLine, parseStatusLine } from './head.js';
import { partialLine } from './partial.js';

export interface H1ParserListener {
  /** A request head; the parser's bodyKind, keepAlive, tunnel and expectContinue describe it. */
  onRequestHead(head: RequestHead): void;
  /** A response head, interim (1xx) ones included. */
  onResponseHead(head: ResponseHead): void;
  /** A slice of the input. False: stop here until execute() is called again. */
  onBody(chunk: Buffer): boolean;
  onMessageEnd(trailers: HeaderList | undefined): void;
  /** The input broke HTTP/1; `status` is what a server answers (400, 431, 505). No more events follow. */
  onParseError(err: ProxyError, status: number): void;
}

export interface H1ParserOptions {
  /** Bytes of a head (start line and fields) or of a trailer section. Default 64 KiB. */
  maxHeadBytes?: number;
  /** Fields in a head or a trailer section. Default 200. */
  maxHeaders?: number;
  /** A chunk-size line with its extensions. Default 4 KiB. */
  maxChunkLine?: number;
}

export type BodyKind = 'none' | 'length' | 'chunked' | 'close';

const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_CR = 4;
const S_CHUNK_LF = 5;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Heads are decoded whole only from this many buffered bytes on (see #decodeHead). */
const WHOLE_HEAD_MIN = 160;
const S_TRAILERS = 6;
const S_CLOSE = 7;
const S_TUNNEL = 8;
const S_DEAD = 9;

export class H1Parser {
  readonly #listener: H1ParserListener;
  readonly #request: boolean;
  readonly #maxHead: number;
  readonly #maxHeaders: number;
  readonly #maxChunkLine: number;
  #state = S_HEAD;
  /** An incomplete line, kept only while one is pending. */
  #stash: Buffer | undefined;
  /** Bytes of the current head or trailer section so far. */
  #sectionBytes = 0;
  #remaining = 0;
  #stop = false;
  /** Fields of the head or trailers being read, and what they say about framing. */
  readonly #scan = new HeadScan();

  // What the last head said, for the connection driving the parser.
  bodyKind: BodyKind = 'none';
  /** Content-Length when bodyKind is 'length'. */
  contentLength = 0;
  keepAlive = true;
  /** Upgrade or CONNECT (requests), 101 or a 2xx to CONNECT (responses): the bytes after the head are not HTTP. */
  tunnel = false;
  expectContinue = false;
  /** Response mode: the method of the request the next response answers (HEAD and CONNECT frame differently). */
  requestMethod = 'GET';

  constructor(mode: 'request' | 'response', listener: H1ParserListener, o: H1ParserOptions = {}) {
    this.#request = mode === 'request';
    this.#listener = listener;
    this.#maxHead = o.maxHeadBytes ?? 65536;
    this.#maxHeaders = o.maxHeaders ?? 200;
    this.#maxChunkLine = o.maxChunkLine ?? 4096;
  }

  /** Between messages with nothing of the next one read yet. */
  get idle(): boolean {
    return this.#state === S_HEAD && this.#stash === undefined && !this.#scan.started;
  }

  /** The last head switched the connection to a tunnel: execute() takes nothing more. */
  get tunneled(): boolean {
    return this.#state === S_TUNNEL;
  }

  get dead(): boolean {
    return this.#state === S_DEAD;
  }

  /** Makes execute() return after the current event. */
  stop(): void {
    this.#stop = true;
  }

  /** Back to waiting for a new message (a connection returned to a pool). */
  reset(): void {
    this.#state = S_HEAD;
    this.#stash = undefined;
    this.#sectionBytes = 0;
    this.#stop = false;
    this.#scan.clear();
  }

  /**
   * The peer closed. True when that ends things cleanly: between messages, or a
   * body delimited by the close (whose end is delivered now). False: truncated.
   */
  finish(): boolean {
    if (this.#state === S_CLOSE) {
      this.#state = S_HEAD;
      this.#listener.onMessageEnd(undefined);
      return true;
    }
    if (this.#state === S_HEAD && !this.#scan.started && this.#stash !== undefined) {
      // Only stray CRs between messages: nothing was cut.
      let i = 0;
      while (i < this.#stash.length && this.#stash[i] === CR) i++;
      if (i === this.#stash.length) return true;
    }
    return this.idle || this.#state === S_DEAD || this.#state === S_TUNNEL;
  }

  /** Parses buf from off; returns the offset where it stopped (buf.length when all was taken). */
  execute(buf: Buffer, off = 0): number {
    const len = buf.length;
    this.#stop = false;
    while (off < len) {
      switch (this.#state) {
        case S_HEAD:
        case S_CHUNK_SIZE:
        case S_TRAILERS: {
          const next = this.#lines(buf, off);
          if (next < 0) return len; // a partial line is stashed
          off = next;
          break;
        }
        case S_LENGTH: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const more = this.#listener.onBody(buf.subarray(off, off + n));
          off += n;
          if (this.#remaining === 0) {
            this.#end(undefined);
            return off;
          }
          if (!more) return off;
          break;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const more = this.#listener.onBody(buf.subarray(off, off + n));
          off += n;
          if (this.#remaining === 0) this.#state = S_CHUNK_CR;
          if (!more) return off;
          break;
        }
        case S_CHUNK_CR:
          // Chunk data is followed by exactly CRLF: anything else means the sender's
          // length and ours disagree, the start of a smuggled message.
          if (buf[off] !== CR) return this.#fail('MESH_CLIENT_PROTOCOL', 400, 'chunk data not followed by CRLF');
          off++;
          this.#state = S_CHUNK_LF;
          break;
        case S_CHUNK_LF:
          if (buf[off] !== LF) return this.#fail('MESH_CLIENT_PROTOCOL', 400, 'chunk data not followed by CRLF');
          off++;
          this.#state = S_CHUNK_SIZE;
          this.#sectionBytes = 0;
          break;
        case S_CLOSE: {
          const more = this.#listener.onBody(off === 0 ? buf : buf.subarray(off));
          off = len;
          if (!more) return off;
          break;
        }
        default:
          // A tunnel's bytes are not ours; a dead parser reads nothing more.
          return off;
      }
      if (this.#stop) {
        this.#stop = false;
        return off;
      }
    }
    return off;
  }

  /** Consumes complete lines from buf; -1 when the rest is a partial line (stashed). */
  #lines(buf: Buffer, off: number): number {
    const limit = this.#state === S_CHUNK_SIZE ? this.#maxChunkLine : this.#maxHead;
    const scan = this.#scan;
    if (this.#state === S_HEAD && this.#stash === undefined && scan.textOf !== buf) this.#decodeHead(buf, off, limit);
    // Within a head decoded whole, the next LF is found in its text (no call into C++).
    const t = scan.textOf === buf ? scan.text : undefined;
    let lf: number;
    if (t !== undefined && off >= scan.textAt && off - scan.textAt < t.length) {
      const i = t.indexOf('\n', off - scan.textAt);
      lf = i < 0 ? buf.indexOf(LF, scan.textAt + t.length) : i + scan.textAt;
    } else lf = buf.indexOf(LF, off);
    if (lf < 0) {
      const size = this.#sectionBytes + (this.#stash?.length ?? 0) + buf.length - off;
      if (size > limit) return this.#fail('MESH_HEADERS_TOO_LARGE', 431, this.#state === S_CHUNK_SIZE ? 'chunk-size line too long' : 'head too large');
      // A CR is only ever the end of a line: one followed by anything but LF is bare.
      const cr = buf.indexOf(CR, off);
      if (cr >= 0 && cr < buf.length - 1) return this.#fail('MESH_CLIENT_PROTOCOL', 400, 'bare CR');
      if (this.#stash !== undefined && this.#stash[this.#stash.length - 1] === CR && off < buf.length) {
        return this.#fail('MESH_CLIENT_PROTOCOL', 400, 'bare CR');
      }
      // A partial line is copied only when it spans reads; the common case keeps a view.
      const stash = this.#stash === undefined ? buf.subarray(off) : Buffer.concat([this.#stash, buf.subarray(off)]);
      this.#stash = stash;
      // Refuse garbage as it arrives (bounded: a long line is checked when complete).
      if (stash.length <= 1024) {
        const why = this.#checkPartial(stash);
        if (why !== undefined) return this.#fail(this.#code(), why === 'HTTP version not supported' ? 505 : 400, why);
      }
      return -1;
    }
    let line = buf;
    let s = off;
    let e = lf;
    if (this.#stash !== undefined) {
      line = Buffer.concat([this.#stash, buf.subarray(off, lf + 1)]);
      this.#stash = undefined;
      s = 0;
      e = line.length - 1;
    }
    this.#sectionBytes += e - s + 1;
    if (this.#sectionBytes > limit) {
      return this.#fail('MESH_HEADERS_TOO_LARGE', 431, this.#state === S_CHUNK_SIZE ? 'chunk-size line too long' : 'head too large');
    }
    if (e === s || line[e - 1] !== CR) return this.#fail('MESH_CLIENT_PROTOCOL', 400, 'bare LF');
    e--; // the content ends before CR; a CR inside it fails the byte-class checks below
    switch (this.#state) {
      case S_HEAD:
        this.#headLine(line, s, e);
        break;
      case S_CHUNK_SIZE:
        this.#chunkSizeLine(line, s, e);
        break;
      default:
        this.#trailerLine(line, s, e);
    }
    return this.#state === S_DEAD ? buf.length : lf + 1;
  }

  /**
   * A head that is all in this buffer (its blank line is here, within the limit) is decoded
   * in one piece; its lines are then substrings of it. Otherwise lines are decoded one by one.
   */
  #decodeHead(buf: Buffer, off: number, limit: number): void {
    const scan = this.#scan;
    // Searched once per buffer and head, found or not (a head cut by the read is not searched per line).
    scan.textOf = buf;
    scan.text = undefined;
    // A short head has too few lines for this to pay (measured: a 2-line head is ~20% slower so).
    if (buf.length - off < WHOLE_HEAD_MIN) return;
    const end = buf.indexOf(HEAD_END, off);
    if (end < 0 || end + 4 - off > limit - this.#sectionBytes) return;
    scan.text = latin1(buf, off, end + 4);
    scan.textAt = off;
  }

  /** Is a line cut short already wrong? One ending in CR is checked as complete. */
  #checkPartial(stash: Buffer): string | undefined {
    const crEnded = stash[stash.length - 1] === CR;
    const end = crEnded ? stash.length - 1 : stash.length;
    if (this.#state === S_CHUNK_SIZE) return partialChunkLine(stash, 0, end);
    const startLine = this.#state === S_HEAD && !this.#scan.started;
    if (!crEnded || end === 0) return partialLine(stash, 0, end, startLine ? (this.#request ? 'request' : 'status') : undefined, crEnded);
    // Rare (a read ending between CR and LF): a scratch scan keeps the real one untouched.
    const scratch = new HeadScan();
    if (startLine) return (this.#request ? parseRequestLine : parseStatusLine)(stash, 0, end, scratch)?.message;
    const why = parseHeaderLine(stash, 0, end, scratch, this.#state === S_HEAD);
    return why ?? (scratch.clInvalid ? 'invalid content-length' : undefined);
  }

  #headLine(b: Buffer, s: number, e: number): void {
    const scan = this.#scan;
    if (!scan.started) {
      // RFC 9112 §2.2: empty lines before a request-line are ignored (a client's
      // stray CRLF after a POST body); they still count toward the head limit.
      // llhttp skips them before a status line too.
      if (s === e) return;
      const err = this.#request ? parseRequestLine(b, s, e, scan) : parseStatusLine(b, s, e, scan);
      if (err !== undefined) return void this.#fail(this.#code(), err.status, err.message);
      return;
    }
    if (s === e) return this.#headDone();
    if (scan.count >= this.#maxHeaders) return void this.#fail('MESH_HEADERS_TOO_LARGE', 431, 'too many header fields');
    const msg = parseHeaderLine(b, s, e, scan, true);
    if (msg !== undefined) return void this.#fail(this.#code(), 400, msg);
    // Refused at the line, as llhttp does, rather than at the end of the head.
    if (scan.clInvalid) this.#fail(this.#code(), 400, 'invalid content-length');
    else if (scan.clCount > 1) this.#fail(this.#code(), 400, 'several content-length fields');
  }

  #trailerLine(b: Buffer, s: number, e: number): void {
    const scan = this.#scan;
    if (s === e) {
      const trailers = scan.count > 0 ? scan.headers : undefined;
      this.#end(trailers);
      return;
    }
    if (scan.count >= this.#maxHeaders) return void this.#fail('MESH_HEADERS_TOO_LARGE', 431, 'too many trailer fields');
    // Trailers never frame the message: no framing bookkeeping, same syntax rules.
    const msg = parseHeaderLine(b, s, e, scan, false);
    if (msg !== undefined) return void this.#fail(this.#code(), 400, msg);
    // A framing field among trailers (RFC 9110 §6.5.1 forbids sending one) is refused, as llhttp does.
    const name = scan.headers[scan.headers.length - 2]!;
    if ((name.length === 14 || name.length === 17) && /^(content-length|transfer-encoding)$/i.test(name)) this.#fail(this.#code(), 400, 'framing field in trailers');
  }

  #chunkSizeLine(b: Buffer, s: number, e: number): void {
    const n = parseChunkSize(b, s, e);
    if (n < 0) return void this.#fail(this.#code(), 400, chunkError(n));
    this.#sectionBytes = 0;
    if (n === 0) {
      this.#state = S_TRAILERS;
      this.#scan.clear();
      this.#scan.started = true;
    } else {
      this.#remaining = n;
      this.#state = S_CHUNK_DATA;
    }
  }

  #headDone(): void {
    const scan = this.#scan;
    this.#sectionBytes = 0;
    const f = scan.framing(this.#request);
    if (f === undefined) return void this.#fail(this.#code(), 400, scan.why);
    this.keepAlive = scan.keepAlive();
    this.expectContinue = false;
    this.tunnel = false;
    this.contentLength = scan.contentLength;
    this.bodyKind = f;
    if (this.#request) {
      this.expectContinue = scan.expectContinue && scan.version === 11;
      this.tunnel = scan.method === 'CONNECT' || (scan.upgrade && scan.connUpgrade);
      const head: RequestHead = { method: scan.method, target: scan.target, scheme: undefined, authority: undefined, version: scan.version as HttpVersion, headers: scan.headers };
      scan.clear();
      if (this.tunnel) {
        this.#state = S_TUNNEL;
        this.#stop = true;
        this.#listener.onRequestHead(head);
        return;
      }
      this.#listener.onRequestHead(head);
      this.#startBody();
      return;
    }
    const status = scan.status;
    const head: ResponseHead = { status, reason: scan.reason, version: scan.version as HttpVersion, headers: scan.headers };
    scan.clear();
    if (status < 200) {
      // Interim responses have no body; 101 switches the connection to another protocol.
      if (status === 101) {
        this.tunnel = true;
        this.#state = S_TUNNEL;
        this.#stop = true;
      }
      this.bodyKind = 'none';
      this.#listener.onResponseHead(head);
      return;
    }
    const method = this.requestMethod;
    if (method === 'CONNECT' && status < 300) {
      this.tunnel = true;
      this.bodyKind = 'none';
      this.#state = S_TUNNEL;
      this.#stop = true;
      this.#listener.onResponseHead(head);
      return;
    }
    if (method === 'HEAD' || status === 204 || status === 304) this.bodyKind = 'none';
    else if (f === 'close') this.keepAlive = false;
    this.#listener.onResponseHead(head);
    this.#startBody();
  }

  #startBody(): void {
    if (this.#state === S_DEAD) return;
    switch (this.bodyKind) {
      case 'none':
        return this.#end(undefined);
      case 'length':
        if (this.contentLength === 0) return this.#end(undefined);
        this.#remaining = this.contentLength;
        this.#state = S_LENGTH;
        return;
      case 'chunked':
        this.#state = S_CHUNK_SIZE;
        return;
      case 'close':
        this.#state = S_CLOSE;
        return;
    }
  }

  #end(trailers: HeaderList | undefined): void {
    this.#state = S_HEAD;
    this.#sectionBytes = 0;
    this.#scan.clear();
    this.#stop = true;
    this.#listener.onMessageEnd(trailers);
  }

  #code(): ProxyErrorCode {
    return this.#request ? 'MESH_CLIENT_PROTOCOL' : 'MESH_UPSTREAM_PROTOCOL';
  }

  #fail(code: ProxyErrorCode, status: number, message: string): number {
    if (code === 'MESH_CLIENT_PROTOCOL') code = this.#code();
    // A broken response is the upstream's fault: 502 to whoever is waiting.
    if (!this.#request && status !== 431) status = 502;
    this.#state = S_DEAD;
    this.#stash = undefined;
    this.#stop = true;
    this.#listener.onParseError(new ProxyError(code, message), status);
    return -2;
  }
}
