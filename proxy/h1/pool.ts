// A keep-alive pool of HTTP/1 connections to one endpoint: the Dispatcher the
// forwarder sends HTTP/1 upstream requests through. Idle connections are
// reused last-in first-out (the warmest, least likely closed by the server)
// and close after 4 s, under the 5 s idle timeout most servers use.
import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { H2_REFUSED_STREAM, type ClientStream, type Dispatcher, type RequestHead, type ResponseListener } from '../message/types.js';
import { H1ClientConnection, type H1ConnectionOwner } from './client.js';
import { H1ClientStream } from './client-stream.js';
import { Deadlines, sharedDeadlines } from './deadlines.js';
import type { H1ParserOptions } from './parser.js';

export interface H1PoolOptions {
  /** A connected socket to the endpoint (plain TCP or mTLS); rejects with a ProxyError. */
  dial(): Promise<Socket>;
  /** Default 4 s. */
  idleTimeoutMs?: number;
  /** Idle connections kept; more are closed as they are released. Default 64. */
  maxIdle?: number;
  deadlines?: Deadlines;
  parser?: H1ParserOptions;
  /** Closes with a TCP RST (transport/tls.ts's for TLS sockets). Default resetAndDestroy(). */
  reset?(socket: Socket): void;
}

export class H1Pool implements Dispatcher, H1ConnectionOwner {
  readonly #o: H1PoolOptions;
  readonly #deadlines: Deadlines;
  readonly #idleTimeout: number;
  readonly #maxIdle: number;
  /** LIFO: push on release, pop to reuse. */
  readonly #idle: H1ClientConnection[] = [];
  /** Connections carrying a request (each marks itself `inUse`): a count, not a set, so a request costs no set operations. */
  #active = 0;
  #closed = false;
  readonly #dropped = (s: H1ClientStream): void => void s;

  constructor(o: H1PoolOptions) {
    this.#o = o;
    this.#deadlines = o.deadlines ?? sharedDeadlines();
    this.#idleTimeout = o.idleTimeoutMs ?? 4000;
    this.#maxIdle = o.maxIdle ?? 64;
  }

  get idle(): number {
    return this.#idle.length;
  }

  get active(): number {
    return this.#active;
  }

  request(head: RequestHead, bodyless: boolean, l: ResponseListener): ClientStream {
    const s = new H1ClientStream(head, bodyless, l, this.#dropped);
    if (this.#closed) {
      // Reported after the caller holds its stream, never by throwing.
      queueMicrotask(() => this.#refuse(s, new ProxyError('MESH_CONNECT_FAILED', 'HTTP/1 pool closed')));
      return s;
    }
    const c = this.#idle.pop();
    if (c !== undefined) {
      // It stays among the deadlines for its whole life; start() clears its idle deadline.
      this.#take(c);
      c.start(s);
    } else this.#dial(s);
    return s;
  }

  /** Closes idle connections now; in-flight ones finish and then close. */
  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) {
      this.#deadlines.delete(c);
      c.close();
    }
  }

  drain(): void {
    this.close();
  }

  #dial(s: H1ClientStream): void {
    this.#o.dial().then(
      (socket) => {
        const c = new H1ClientConnection(socket, this, this.#o.parser);
        this.#deadlines.add(c);
        if (s.done) return this.#keep(c); // the request was reset while we dialed: keep the connection
        this.#take(c);
        c.start(s);
      },
      (err: unknown) => {
        const e = err instanceof ProxyError ? err : new ProxyError('MESH_CONNECT_FAILED', `connect failed: ${(err as Error).message}`);
        this.#refuse(s, e);
      },
    );
  }

  #refuse(s: H1ClientStream, e: ProxyError): void {
    if (s.done) return;
    s.finished();
    s.listener.onReset({ h2Code: H2_REFUSED_STREAM, error: e });
  }

  // H1ConnectionOwner

  #take(c: H1ClientConnection): void {
    c.inUse = true;
    this.#active++;
  }

  release(c: H1ClientConnection): void {
    if (c.inUse) {
      c.inUse = false;
      this.#active--;
    }
    this.#keep(c);
  }

  #keep(c: H1ClientConnection): void {
    if (this.#closed || c.closed || this.#idle.length >= this.#maxIdle) return c.close();
    this.#idle.push(c);
    // The sweeper refreshes `now` every round while any connection is registered.
    c.deadline = this.#deadlines.now + this.#idleTimeout;
  }

  gone(c: H1ClientConnection): void {
    if (c.inUse) {
      c.inUse = false;
      this.#active--;
    }
    this.#deadlines.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  retry(s: H1ClientStream): void {
    s.retried = true;
    s.detach();
    // A fresh connection: another idle one may be just as stale.
    this.#dial(s);
  }

  reset(socket: Socket): void {
    if (this.#o.reset !== undefined) this.#o.reset(socket);
    else socket.resetAndDestroy();
  }
}
