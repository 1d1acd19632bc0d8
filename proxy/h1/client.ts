// HTTP/1 client side: one upstream connection carrying one request at a time
// for an H1Pool. The connection parses responses (told each request's method),
// frames request bodies itself, and goes back to its pool only in a clean state:
// response and request complete, keep-alive, nothing unread, nobody listening.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { noteRead } from '../gc.js';
import { H2_CANCEL, H2_PROTOCOL_ERROR, type HeaderList, type ResponseHead } from '../message/types.js';
import { takeReads } from '../transport/reads.js';
import { H1Output } from './batch.js';
import type { Expiring } from './deadlines.js';
import { H1Parser, type H1ParserListener, type H1ParserOptions } from './parser.js';
import { lastChunk, serializeRequest, writeFramed, type Framing } from './serialize.js';
import type { H1ClientStream } from './client-stream.js';

/** What a connection needs of its pool. */
export interface H1ConnectionOwner {
  /** The exchange completed cleanly: keep the connection or close it. */
  release(c: H1ClientConnection): void;
  /** The connection is gone (closed, failed, reset): forget it. */
  gone(c: H1ClientConnection): void;
  /** A bodyless request met a stale reused connection: send it once more on a fresh one. */
  retry(s: H1ClientStream): void;
  reset(socket: Socket): void;
}

export class H1ClientConnection implements H1ParserListener, Expiring {
  readonly socket: Socket;
  readonly #out: H1Output;
  deadline = Infinity;
  /** Its pool has it carrying a request (the pool's count of active connections). */
  inUse = false;
  readonly #owner: H1ConnectionOwner;
  readonly #parser: H1Parser;
  #stream: H1ClientStream | undefined;
  #buf: Buffer | undefined;
  #off = 0;
  #driving = false;
  /** Requests this connection has carried: > 0 means the next one is on a reused connection. */
  #uses = 0;
  #reused = false;
  #gotBytes = false;
  #framing: Framing = 'none';
  #reqDone = false;
  #resDone = false;
  #finalSeen = false;
  #paused = false;
  #closed = false;
  /** The response ended inside the running parse. */
  #ended = false;
  #eofWhy: string | undefined;

  constructor(socket: Socket, owner: H1ConnectionOwner, o: H1ParserOptions = {}) {
    this.socket = socket;
    this.#out = new H1Output(socket);
    this.#owner = owner;
    this.#parser = new H1Parser('response', this, o);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
    if (!takeReads(socket, this.#onData)) socket.on('data', this.#onData);
    if (socket.isPaused()) socket.resume();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get busy(): boolean {
    return this.#stream !== undefined;
  }

  /** Sends a request: its head now (with the first body chunk if written in the same turn). */
  start(s: H1ClientStream): void {
    this.deadline = Infinity;
    this.#reused = this.#uses > 0;
    this.#uses++;
    this.#stream = s;
    this.#gotBytes = false;
    this.#reqDone = false;
    this.#resDone = false;
    this.#finalSeen = false;
    this.#ended = false;
    this.#parser.reset();
    this.#parser.requestMethod = s.head.method;
    const out = serializeRequest(s.head, s.bodyless);
    this.#framing = out.framing;
    this.#out.text(out.head);
    if (s.bodyless) this.#reqDone = true;
    s.attached(this);
  }

  writeBody(chunk: Buffer): boolean {
    if (this.#reqDone || this.#closed) return true;
    return writeFramed(this.#out, this.#framing, chunk);
  }

  endBody(trailers: HeaderList | undefined): void {
    if (this.#reqDone || this.#closed) return;
    if (this.#framing === 'chunked') {
      this.#out.text(lastChunk(trailers));
    }
    this.#reqDone = true;
    if (this.#resDone && !this.#driving) this.#done();
  }

  resumeBody(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#closed) this.socket.resume();
    this.#drive();
  }

  /**
   * The forwarder gave up on the request: the connection cannot be trusted any more.
   * Often called from inside one of the parser's callbacks below (a bodyless answer to an
   * upload still being sent, a retried status): the parser is told to stop, and the
   * callbacks it still makes for the buffer it is reading find no stream and do nothing.
   */
  abort(): void {
    this.#stream = undefined;
    this.#parser.stop();
    this.#close(true);
  }

  /** Closes an idle connection (pool idle timeout, pool close). */
  close(): void {
    if (this.#stream === undefined) this.#close(false);
  }

  expire(): void {
    this.deadline = Infinity;
    this.close();
  }

  readonly #onData = (chunk: Buffer): void => {
    noteRead(chunk.length);
    if (this.#stream === undefined) {
      // Bytes on an idle connection answer nothing we asked: the connection is unusable.
      return this.#close(false);
    }
    this.#gotBytes = true;
    if (this.#buf === undefined) {
      this.#buf = chunk;
      this.#off = 0;
    } else {
      this.#buf = Buffer.concat([this.#buf.subarray(this.#off), chunk]);
      this.#off = 0;
    }
    this.#drive();
  };

  #drive(): void {
    if (this.#driving) return;
    this.#driving = true;
    try {
      while (this.#buf !== undefined && this.#stream !== undefined && !this.#paused && !this.#closed) {
        const buf = this.#buf;
        const off = this.#parser.execute(buf, this.#off);
        this.#off = off;
        if (off >= buf.length) this.#buf = undefined;
        if (this.#ended) {
          this.#ended = false;
          if (this.#reqDone) this.#done();
          break;
        }
        if (this.#parser.dead) break;
        if (this.#parser.tunneled) {
          this.#fail(new ProxyError('MESH_UPSTREAM_PROTOCOL', 'upstream switched protocols on a request that did not ask to'), H2_PROTOCOL_ERROR);
          break;
        }
      }
    } finally {
      this.#driving = false;
    }
    if (this.#eofWhy !== undefined && this.#buf === undefined && !this.#paused && !this.#closed) this.#settle();
  }

  onRequestHead(): void {
    // A response parser reports no requests.
  }

  onResponseHead(head: ResponseHead): void {
    const s = this.#stream;
    if (s === undefined) return; // aborted meanwhile (see abort())
    if (head.status < 200) {
      if (head.status === 100) s.listener.onContinue();
      // Other interim responses (102, 103) have no place in the seam: dropped.
      return;
    }
    this.#finalSeen = true;
    const p = this.#parser;
    const endStream = p.bodyKind === 'none' || (p.bodyKind === 'length' && p.contentLength === 0);
    s.listener.onResponse(head, endStream);
  }

  onBody(chunk: Buffer): boolean {
    const s = this.#stream;
    if (s === undefined) return false; // aborted meanwhile: read nothing more
    if (s.listener.onData(chunk)) return true;
    this.#paused = true;
    this.socket.pause();
    return false;
  }

  onMessageEnd(trailers: HeaderList | undefined): void {
    this.#resDone = true;
    const s = this.#stream;
    if (s === undefined) return; // aborted meanwhile
    if (!this.#reqDone || !this.#parser.keepAlive) {
      // Answered before the request was all sent (or closing): never reused.
      this.#stream = undefined;
      s.finished();
      s.listener.onEnd(trailers);
      this.#close(false);
      return;
    }
    s.listener.onEnd(trailers);
    // Decided once the parser has returned and the read buffer's state is known.
    this.#ended = true;
  }

  onParseError(err: ProxyError): void {
    this.#fail(err, H2_PROTOCOL_ERROR);
  }

  /** Request and response complete: back to the pool, clean. */
  #done(): void {
    const s = this.#stream;
    if (s === undefined) return;
    this.#stream = undefined;
    s.finished();
    // Anything after the response is a server speaking out of turn.
    if (this.#buf !== undefined || !this.#parser.keepAlive || this.#closed) return this.#close(false);
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    this.#parser.reset();
    this.#owner.release(this);
  }

  #fail(err: ProxyError, h2Code: number): void {
    const s = this.#stream;
    this.#stream = undefined;
    this.#close(false);
    if (s !== undefined) {
      s.finished();
      s.listener.onReset({ h2Code, error: err });
    }
  }

  readonly #onDrain = (): void => {
    if (this.#stream !== undefined && !this.#reqDone) this.#stream.listener.onWritable();
  };

  readonly #onEnd = (): void => this.#lost('upstream closed the connection');

  #error: Error | undefined;
  readonly #onError = (err: Error): void => {
    this.#error = err;
  };

  readonly #onClose = (): void => this.#lost(this.#error !== undefined ? `upstream connection lost: ${this.#error.message}` : 'upstream connection closed');

  #lost(why: string): void {
    this.#eofWhy ??= why;
    // Bytes still buffered (a paused body) are delivered before the close counts.
    if (this.#stream !== undefined && (this.#buf !== undefined || this.#paused) && !this.#closed) return;
    this.#settle();
  }

  /** The peer has closed and everything read has been parsed: how did the exchange end? */
  #settle(): void {
    const s = this.#stream;
    const why = this.#eofWhy ?? 'upstream connection closed';
    if (s !== undefined) {
      // The server closed an idle connection as we reused it: nothing was processed, a bodyless request goes again.
      if (!this.#gotBytes && this.#reused && s.bodyless && !s.retried) {
        this.#stream = undefined;
        this.#close(false);
        this.#owner.retry(s);
        return;
      }
      // A body delimited by the close ends here (finish() delivers its end).
      if (this.#finalSeen) this.#parser.finish();
      if (this.#stream !== undefined) return this.#fail(new ProxyError('MESH_UPSTREAM_RESET', why), H2_CANCEL);
    }
    this.#close(false);
  }

  #close(rst: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buf = undefined;
    this.#out.discard();
    this.#owner.gone(this);
    if (rst) this.#owner.reset(this.socket);
    else this.socket.destroy();
  }
}
