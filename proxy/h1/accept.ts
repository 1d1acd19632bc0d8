// The HTTP/1 server for every accepted client connection of a listener:
// shares one deadline sweeper among them and closes them all on drain.
import type { Socket } from 'node:net';
import type { ServerHandler } from '../message/types.js';
import { Deadlines, sharedDeadlines } from './deadlines.js';
import { H1ServerConnection, type H1ServerOptions } from './server.js';

export class H1Server {
  readonly #handler: ServerHandler;
  readonly #o: H1ServerOptions;
  readonly #live = new Set<H1ServerConnection>();
  #draining = false;
  readonly #gone = (c: H1ServerConnection): void => void this.#live.delete(c);

  constructor(handler: ServerHandler, o: H1ServerOptions = {}) {
    this.#handler = handler;
    this.#o = { ...o, deadlines: o.deadlines ?? sharedDeadlines() };
  }

  get deadlines(): Deadlines {
    return this.#o.deadlines!;
  }

  /** Serves a connection; `initial`: bytes protocol detection already read from it. */
  accept(socket: Socket, initial?: Buffer): H1ServerConnection {
    const c = new H1ServerConnection(socket, this.#handler, this.#o, initial, this.#gone);
    if (!c.closed) {
      this.#live.add(c);
      if (this.#draining) c.drain();
    }
    return c;
  }

  /** Idle connections close now, busy ones after their exchange; new ones close when idle. */
  drain(): void {
    this.#draining = true;
    for (const c of this.#live) c.drain();
  }

  get connections(): number {
    return this.#live.size;
  }
}
