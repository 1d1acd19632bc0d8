// HTTP/1 server side: one client connection, requests in, responses out, one
// exchange at a time. Pipelined requests wait in the read buffer until the
// response before them is complete. Upgrade and CONNECT hand the socket over
// as a tunnel, and the codec lets go of it completely.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { noteRead } from '../gc.js';
import { H2_CANCEL, H2_PROTOCOL_ERROR, type HeaderList, type RequestHead, type RequestListener, type ResponseHead, type ServerHandler, type StreamReset } from '../message/types.js';
import { readsAsEvents, takeReads } from '../transport/reads.js';
import { H1Output } from './batch.js';
import { Deadlines, sharedDeadlines, type Expiring } from './deadlines.js';
import { H1Parser, type H1ParserListener, type H1ParserOptions } from './parser.js';
import { errorResponse, lastChunk, serializeResponse, writeFramed, type Framing } from './serialize.js';
import { H1ServerStream } from './server-stream.js';

export interface H1ServerOptions {
  parser?: H1ParserOptions;
  /** A request head must be complete within this, from connection start or first byte after idle. Default 10 s. */
  headTimeoutMs?: number;
  /** A keep-alive connection with no request in it closes after this. Default 60 s. */
  idleTimeoutMs?: number;
  /** Read-ahead kept while a request waits for its turn before the socket is paused. Default 64 KiB. */
  maxBufferedBytes?: number;
  deadlines?: Deadlines;
  /** Upgrade and CONNECT: the socket (paused, no listeners of ours) and the bytes read after the head. */
  onTunnel?(head: RequestHead, socket: Socket, rest: Buffer): void;
  /** A client broke HTTP/1 or timed out (answered 400/408/431/505): for logs and metrics. */
  onProtocolError?(err: ProxyError, status: number): void;
  /** Closes with a TCP RST. Default socket.resetAndDestroy(); TLS sockets need transport/tls.ts's. */
  reset?(socket: Socket): void;
}

const NOOP: RequestListener = { onData: () => true, onEnd() {}, onReset() {}, onWritable() {} };

const D_NONE = 0;
const D_HEAD = 1;
const D_IDLE = 2;
const D_LINGER = 3;
/** How long a closing connection drains the client's bytes before it is destroyed. */
const LINGER_MS = 2000;

export class H1ServerConnection implements H1ParserListener, Expiring {
  readonly socket: Socket;
  readonly #out: H1Output;
  deadline = Infinity;
  #deadlineKind = D_NONE;
  readonly #handler: ServerHandler;
  readonly #o: H1ServerOptions;
  readonly #deadlines: Deadlines;
  readonly #parser: H1Parser;
  readonly #headTimeout: number;
  readonly #idleTimeout: number;
  readonly #maxBuffered: number;
  /** Unparsed input, kept only while there is some. */
  #buf: Buffer | undefined;
  #off = 0;
  #driving = false;
  #again = false;

  // The exchange in progress.
  #stream: H1ServerStream | undefined;
  #listener: RequestListener = NOOP;
  #method = 'GET';
  #clientVersion = 11;
  #reqKeepAlive = true;
  #reqDone = false;
  #resStarted = false;
  #resDone = false;
  #continuePending = false;
  #framing: Framing = 'none';
  #closeAfter = false;
  #tunnelHead: RequestHead | undefined;

  #readPaused = false;
  #bufPaused = false;
  #peerEnded = false;
  #closing = false;
  /** Closing: bytes still queued for the client at the last linger check (Infinity before the first). */
  #lingerQueued = Infinity;
  #closed = false;
  #draining = false;
  readonly #onGone: ((c: H1ServerConnection) => void) | undefined;

  constructor(socket: Socket, handler: ServerHandler, o: H1ServerOptions = {}, initial?: Buffer, onGone?: (c: H1ServerConnection) => void) {
    this.socket = socket;
    this.#out = new H1Output(socket);
    this.#onGone = onGone;
    this.#handler = handler;
    this.#o = o;
    this.#deadlines = o.deadlines ?? sharedDeadlines();
    this.#parser = new H1Parser('request', this, o.parser);
    this.#headTimeout = o.headTimeoutMs ?? 10_000;
    this.#idleTimeout = o.idleTimeoutMs ?? 60_000;
    this.#maxBuffered = o.maxBufferedBytes ?? 65536;
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
    this.#deadlines.add(this); // first: it refreshes `now` when the sweeper was asleep
    this.#arm(D_HEAD, this.#headTimeout);
    if (initial !== undefined && initial.length > 0) this.#onData(initial);
    // Then what the socket holds and reads (proxy/transport/reads.ts): after `initial`, which came first.
    if (!this.#closed && !takeReads(socket, this.#onData)) socket.on('data', this.#onData);
    // Detection may have paused the socket; we read from here on.
    if (!this.#closed && !this.#readPaused && !this.#bufPaused && this.#tunnelHead === undefined) socket.resume();
  }

  /** Closes the connection when idle; one with an exchange closes after it. */
  drain(): void {
    this.#draining = true;
    if (this.#stream === undefined && !this.#closing && this.#parser.idle && this.#buf === undefined) this.#closeGracefully();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #arm(kind: number, ms: number): void {
    this.#deadlineKind = kind;
    this.deadline = this.#deadlines.now + ms;
  }

  expire(): void {
    const kind = this.#deadlineKind;
    this.deadline = Infinity;
    this.#deadlineKind = D_NONE;
    if (kind === D_HEAD && this.#stream === undefined) {
      // HAProxy and Node answer a head that never completes with 408, then close.
      const err = new ProxyError('MESH_HEAD_TIMEOUT', `no complete request head within ${this.#headTimeout} ms`);
      this.#o.onProtocolError?.(err, 408);
      this.#answerAndClose(408);
    } else if (kind === D_IDLE) this.#closeGracefully();
    else if (kind === D_LINGER) {
      // Our last bytes are still leaving (a slow reader of a large response): not cut
      // yet, as long as the client takes some in each period; one that reads nothing
      // would hold the connection (and what is queued for it) forever.
      const queued = this.socket.writableLength;
      if (!this.socket.writableFinished && !this.socket.destroyed && queued < this.#lingerQueued) {
        this.#lingerQueued = queued;
        return this.#arm(D_LINGER, LINGER_MS);
      }
      this.#destroy();
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    noteRead(chunk.length);
    if (this.#closing) return; // draining a closed exchange's leftovers
    if (this.#buf === undefined) {
      this.#buf = chunk;
      this.#off = 0;
    } else {
      // Rare: bytes arrive while a previous read is still unparsed (pipelining, paused body).
      this.#buf = Buffer.concat([this.#buf.subarray(this.#off), chunk]);
      this.#off = 0;
    }
    this.#drive();
    if (this.#buf !== undefined && this.#buf.length - this.#off > this.#maxBuffered && !this.#bufPaused && this.#tunnelHead === undefined && !this.#closed) {
      this.#bufPaused = true;
      this.socket.pause();
    }
  };

  /** Parses what is buffered as far as the exchange state lets it. */
  #drive(): void {
    if (this.#driving) {
      this.#again = true;
      return;
    }
    this.#driving = true;
    try {
      do {
        this.#again = false;
        while (this.#buf !== undefined && !this.#closing && !this.#closed) {
          // One exchange at a time: the next request waits for this response.
          if (this.#stream !== undefined && (this.#reqDone || this.#readPaused)) break;
          const buf = this.#buf;
          const off = this.#parser.execute(buf, this.#off);
          this.#off = off;
          if (off >= buf.length) this.#buf = undefined;
          if (this.#tunnelHead !== undefined) return this.#handoff(buf.subarray(off));
          if (this.#parser.dead) break;
        }
      } while (this.#again);
    } finally {
      this.#driving = false;
    }
    // Part of the next head is here: it is due within the head timeout, not the idle one.
    if (this.#deadlineKind === D_IDLE && this.#stream === undefined && (this.#buf !== undefined || !this.#parser.idle)) this.#arm(D_HEAD, this.#headTimeout);
    if (this.#bufPaused && (this.#buf === undefined || this.#buf.length - this.#off <= this.#maxBuffered)) {
      this.#bufPaused = false;
      if (!this.#readPaused && !this.#closed) this.socket.resume();
    }
  }

  // Parser events.

  onRequestHead(head: RequestHead): void {
    this.deadline = Infinity;
    this.#deadlineKind = D_NONE;
    const p = this.#parser;
    if (p.tunnel) {
      this.#tunnelHead = head;
      return;
    }
    const bodyless = p.bodyKind === 'none' || (p.bodyKind === 'length' && p.contentLength === 0);
    this.#method = head.method;
    this.#clientVersion = head.version;
    this.#reqKeepAlive = p.keepAlive;
    this.#reqDone = false;
    this.#resStarted = false;
    this.#resDone = false;
    this.#closeAfter = false;
    this.#continuePending = p.expectContinue && !bodyless;
    const stream = new H1ServerStream(this, head, bodyless);
    this.#stream = stream;
    this.#listener = NOOP;
    this.#handler.onRequest(stream);
  }

  onResponseHead(): void {
    // A request parser reports no responses.
  }

  onBody(chunk: Buffer): boolean {
    // The client sent the body: nothing is pending any more, 100 or not.
    this.#continuePending = false;
    if (this.#listener.onData(chunk)) return true;
    this.#readPaused = true;
    this.socket.pause();
    return false;
  }

  onMessageEnd(trailers: HeaderList | undefined): void {
    this.#reqDone = true;
    this.#continuePending = false;
    this.#listener.onEnd(trailers);
    if (this.#resDone) this.#exchangeDone();
  }

  onParseError(err: ProxyError, status: number): void {
    this.#o.onProtocolError?.(err, status);
    if (this.#stream !== undefined && !this.#reqDone) {
      // A broken body: the exchange is cut; answer if nothing of the response went out.
      const l = this.#listener;
      const started = this.#resStarted;
      this.#endExchange();
      l.onReset({ h2Code: H2_PROTOCOL_ERROR, error: err });
      if (started) return this.#destroy();
    }
    this.#answerAndClose(status);
  }

  // What the stream asks for (the stream checks it is still the current one).

  listen(l: RequestListener): void {
    this.#listener = l;
  }

  isCurrent(s: H1ServerStream): boolean {
    return s === this.#stream && !this.#closed;
  }

  get continuePending(): boolean {
    return this.#continuePending && !this.#resStarted;
  }

  resume(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    if (!this.#bufPaused && !this.#closed) this.socket.resume();
    this.#drive();
  }

  sendContinue(): void {
    if (!this.#continuePending || this.#resStarted) return;
    this.#continuePending = false;
    this.#out.text('HTTP/1.1 100 Continue\r\n\r\n');
  }

  respond(head: ResponseHead, endStream: boolean): void {
    if (this.#resStarted) return;
    // Without its 100, the client may never send the body it announced: not reusable.
    const keepAlive = this.#reqKeepAlive && !this.#draining && !this.#continuePending && !this.#peerEnded;
    const s = serializeResponse(head, endStream, this.#method, this.#clientVersion, keepAlive, Math.round(this.#idleTimeout / 1000));
    this.#out.text(s.head);
    if (head.status < 200) return; // an interim head: the final one follows
    this.#resStarted = true;
    this.#framing = s.framing;
    this.#closeAfter = s.close;
    if (endStream) this.#responseDone();
  }

  write(chunk: Buffer): boolean {
    if (!this.#resStarted || this.#resDone) return true;
    return writeFramed(this.#out, this.#framing, chunk);
  }

  end(trailers: HeaderList | undefined): void {
    if (!this.#resStarted || this.#resDone) return;
    if (this.#framing === 'chunked') {
      this.#out.text(lastChunk(trailers));
    }
    this.#responseDone();
  }

  reset(_r: StreamReset): void {
    this.#endExchange();
    this.#closed = true;
    this.#deadlines.delete(this);
    this.#out.discard();
    if (this.#o.reset !== undefined) this.#o.reset(this.socket);
    else this.socket.resetAndDestroy();
  }

  #responseDone(): void {
    this.#resDone = true;
    if (this.#reqDone) return this.#exchangeDone();
    if (this.#continuePending) {
      // The body was never asked for and will not come: this connection ends here.
      // The exchange is complete, not reset (a 401/413/417 refusing an upload is
      // how Expect is meant to be used): the forwarder, which is sending this
      // response, stops the request upstream itself.
      this.#endExchange();
      this.#closeGracefully();
    }
    // Otherwise the rest of the request body is still read (and delivered) before the next request.
  }

  #exchangeDone(): void {
    this.#endExchange();
    if (this.#closeAfter || !this.#reqKeepAlive || this.#draining || this.#peerEnded) return this.#closeGracefully();
    this.#arm(D_IDLE, this.#idleTimeout);
    // A pipelined request may be waiting in the buffer (when called from a parser event, the running loop goes on).
    this.#drive();
  }

  #endExchange(): void {
    this.#stream = undefined;
    this.#listener = NOOP;
    this.#continuePending = false;
    if (this.#readPaused) {
      this.#readPaused = false;
      if (!this.#bufPaused && !this.#closed) this.socket.resume();
    }
  }

  // The connection.

  readonly #onDrain = (): void => {
    if (this.#stream !== undefined && this.#resStarted && !this.#resDone) this.#listener.onWritable();
  };

  readonly #onEnd = (): void => {
    this.#peerEnded = true;
    // Both sides done: the socket destroys itself once our writes are flushed (destroying now could drop them).
    if (this.#closing) return;
    if (this.#stream === undefined) {
      // A head cut by the client's FIN is nothing to answer; our side closes too.
      return this.#closeGracefully();
    }
    if (!this.#reqDone) return this.#cut('client closed before its request was complete');
    // Request complete and the client closed: treated as gone, as node:http and
    // hyper do. Waiting for the response instead would hold the upstream request
    // (a long poll, a stream of events) for a client that will never read it.
    this.#cut('client closed its connection while waiting for the response');
  };

  readonly #onError = (): void => {
    // 'close' follows and decides.
  };

  readonly #onClose = (): void => {
    if (this.#stream !== undefined) this.#cut('client connection lost');
    this.#closed = true;
    this.#closing = true;
    this.#buf = undefined;
    this.#deadlines.delete(this);
    this.#onGone?.(this);
  };

  #cut(message: string): void {
    const l = this.#listener;
    this.#endExchange();
    l.onReset({ h2Code: H2_CANCEL, error: new ProxyError('MESH_CLIENT_RESET', message) });
    this.#destroy();
  }

  #answerAndClose(status: number): void {
    if (this.#closing) return;
    this.#out.text(errorResponse(status));
    this.#closeGracefully();
  }

  /** FIN, then read and drop what the client still sends for a while, so our last response is not lost to a RST. */
  #closeGracefully(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    this.#buf = undefined;
    this.#out.flushNow();
    this.socket.end();
    this.#lingerQueued = Infinity;
    this.#arm(D_LINGER, LINGER_MS);
    if (this.socket.isPaused()) this.socket.resume();
  }

  #destroy(): void {
    this.#closing = true;
    this.#closed = true;
    this.#deadlines.delete(this);
    this.#out.discard();
    this.socket.destroy();
  }

  /** Upgrade/CONNECT: the socket leaves with no listener of ours on it. */
  #handoff(rest: Buffer): void {
    const head = this.#tunnelHead!;
    const s = this.socket;
    this.#out.flushNow();
    s.pause();
    s.off('data', this.#onData);
    readsAsEvents(s); // the tunnel listens for 'data'
    s.off('end', this.#onEnd);
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
    s.off('drain', this.#onDrain);
    this.#deadlines.delete(this);
    this.#buf = undefined;
    this.#closed = true;
    this.#onGone?.(this);
    if (this.#o.onTunnel !== undefined) this.#o.onTunnel(head, s, rest);
    else s.destroy();
  }
}
