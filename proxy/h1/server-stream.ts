// The ServerStream of one request on an HTTP/1 server connection. It forwards
// to the connection only while it is that connection's current exchange: a
// forwarder holding on to a finished stream cannot touch the next request.
import type { HeaderList, RequestHead, RequestListener, ResponseHead, ServerStream, StreamReset } from '../message/types.js';
import type { H1ServerConnection } from './server.js';

export class H1ServerStream implements ServerStream {
  readonly head: RequestHead;
  readonly bodyless: boolean;
  readonly #conn: H1ServerConnection;

  constructor(conn: H1ServerConnection, head: RequestHead, bodyless: boolean) {
    this.#conn = conn;
    this.head = head;
    this.bodyless = bodyless;
  }

  get expectsContinue(): boolean {
    return this.#conn.isCurrent(this) && this.#conn.continuePending;
  }

  listen(l: RequestListener): void {
    if (this.#conn.isCurrent(this)) this.#conn.listen(l);
  }

  resume(): void {
    if (this.#conn.isCurrent(this)) this.#conn.resume();
  }

  sendContinue(): void {
    if (this.#conn.isCurrent(this)) this.#conn.sendContinue();
  }

  respond(head: ResponseHead, endStream: boolean): void {
    if (this.#conn.isCurrent(this)) this.#conn.respond(head, endStream);
  }

  write(chunk: Buffer): boolean {
    return this.#conn.isCurrent(this) ? this.#conn.write(chunk) : true;
  }

  end(trailers?: HeaderList): void {
    if (this.#conn.isCurrent(this)) this.#conn.end(trailers);
  }

  reset(r: StreamReset): void {
    if (this.#conn.isCurrent(this)) this.#conn.reset(r);
  }
}
