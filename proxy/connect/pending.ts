// A request sent before its connection exists (an mTLS handshake or a TCP
// connect still under way): the stream is handed out at once, as the seam
// promises, and what the forwarder writes meanwhile waits here (bounded by
// backpressure: the first write already answers "full") until the
// connection is up, or fails the request with the connect's coded error.
import { Buffer } from 'node:buffer';
import { H2_REFUSED_STREAM, type ClientStream, type Dispatcher, type HeaderList, type RequestHead, type ResponseListener, type StreamReset } from '../message/types.js';
import { ProxyError } from '../errors.js';

export class PendingStream implements ClientStream {
  #real: ClientStream | undefined;
  #chunks: Buffer[] | undefined;
  #ended = false;
  #trailers: HeaderList | undefined;
  #reset: StreamReset | undefined;
  #resume = false;

  constructor(
    readonly head: RequestHead,
    readonly bodyless: boolean,
    readonly listener: ResponseListener,
  ) {}

  write(chunk: Buffer): boolean {
    if (this.#real !== undefined) return this.#real.write(chunk);
    // The chunk may be a view into the codec's read buffer, reused after we return.
    (this.#chunks ??= []).push(Buffer.from(chunk));
    return false;
  }

  end(trailers?: HeaderList): void {
    if (this.#real !== undefined) return this.#real.end(trailers);
    this.#ended = true;
    this.#trailers = trailers;
  }

  reset(reset: StreamReset): void {
    if (this.#real !== undefined) return this.#real.reset(reset);
    this.#reset = reset;
  }

  resume(): void {
    if (this.#real !== undefined) return this.#real.resume();
    this.#resume = true;
  }

  /** The connection is up: send the request on it and replay what was written. */
  attach(d: Dispatcher): void {
    if (this.#reset !== undefined) return; // the client gave up before we could even send
    const real = d.request(this.head, this.bodyless, this.listener);
    this.#real = real;
    let writable = true;
    if (this.#chunks !== undefined) for (const c of this.#chunks) writable = real.write(c);
    const hadChunks = this.#chunks !== undefined;
    this.#chunks = undefined;
    if (this.#ended) real.end(this.#trailers);
    if (this.#resume) real.resume();
    // Our first write answered "full": the writer waits for this.
    if (hadChunks && writable && !this.#ended) this.listener.onWritable();
  }

  /** The connection could not be made. */
  fail(error: ProxyError): void {
    if (this.#reset !== undefined) return;
    this.#chunks = undefined;
    this.listener.onReset({ h2Code: H2_REFUSED_STREAM, error });
  }
}

/** A Dispatcher whose connection is on its way: queues streams, then hands them over or fails them. */
export class PendingDispatcher implements Dispatcher {
  #waiting: PendingStream[] | undefined = [];

  request(head: RequestHead, bodyless: boolean, l: ResponseListener): ClientStream {
    const s = new PendingStream(head, bodyless, l);
    this.#waiting!.push(s);
    return s;
  }

  ready(d: Dispatcher): void {
    const w = this.#waiting!;
    this.#waiting = undefined;
    for (const s of w) s.attach(d);
  }

  failed(e: unknown): void {
    const w = this.#waiting!;
    this.#waiting = undefined;
    const error = e instanceof ProxyError ? e : new ProxyError('MESH_CONNECT_FAILED', String(e));
    for (const s of w) s.fail(error);
  }
}
