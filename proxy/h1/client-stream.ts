// The ClientStream of one request sent through an H1Pool. Until a connection
// is attached (dialing), body writes wait here, copied, and write() says
// "full" so the forwarder waits for onWritable instead of queueing more.
import { Buffer } from 'node:buffer';
import type { ClientStream, HeaderList, RequestHead, ResponseListener, StreamReset } from '../message/types.js';
import type { H1ClientConnection } from './client.js';

export class H1ClientStream implements ClientStream {
  #conn: H1ClientConnection | undefined;
  #queued: Buffer[] | undefined;
  #ended = false;
  #trailers: HeaderList | undefined;
  #done = false;
  #blocked = false;
  /** Sent once more after a stale pooled connection: never again. */
  retried = false;

  constructor(
    readonly head: RequestHead,
    readonly bodyless: boolean,
    readonly listener: ResponseListener,
    private readonly onReset: (s: H1ClientStream) => void,
  ) {}

  get done(): boolean {
    return this.#done;
  }

  /** A connection took the request (its head is written): flush what waited. */
  attached(c: H1ClientConnection): void {
    this.#conn = c;
    const q = this.#queued;
    this.#queued = undefined;
    let ok = true;
    if (q !== undefined) for (const chunk of q) ok = c.writeBody(chunk);
    if (this.#ended) c.endBody(this.#trailers);
    else if (this.#blocked && ok) {
      this.#blocked = false;
      this.listener.onWritable();
    }
  }

  /** The exchange is over (ended, failed or retried elsewhere): detach. */
  finished(): void {
    this.#conn = undefined;
    this.#done = true;
  }

  /** Detached for a retry: it may be attached again. */
  detach(): void {
    this.#conn = undefined;
    this.#done = false;
  }

  write(chunk: Buffer): boolean {
    if (this.#done || this.#ended) return true;
    if (this.#conn !== undefined) return this.#conn.writeBody(chunk);
    // The chunk may be a view into a read buffer about to be reused: copy while we hold it.
    (this.#queued ??= []).push(Buffer.from(chunk));
    this.#blocked = true;
    return false;
  }

  end(trailers?: HeaderList): void {
    if (this.#done || this.#ended) return;
    this.#ended = true;
    this.#trailers = trailers;
    this.#conn?.endBody(trailers);
  }

  reset(_r: StreamReset): void {
    if (this.#done) return;
    this.#done = true;
    const c = this.#conn;
    this.#conn = undefined;
    if (c !== undefined) c.abort();
    else this.onReset(this);
  }

  resume(): void {
    this.#conn?.resumeBody();
  }
}
