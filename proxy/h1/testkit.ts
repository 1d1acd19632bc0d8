// Test and fuzz helpers: a parser listener that records what it is told, and
// a driver feeding input at chosen split points.
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ProxyError } from '../errors.js';
import type { HeaderList, RequestHead, ResponseHead } from '../message/types.js';
import { H1Parser, type H1ParserListener, type H1ParserOptions } from './parser.js';

export interface Recorded {
  head: RequestHead | ResponseHead;
  body: Buffer;
  trailers: HeaderList | undefined;
  ended: boolean;
  tunnel: boolean;
}

export class Recorder implements H1ParserListener {
  messages: Recorded[] = [];
  error: ProxyError | undefined;
  status = 0;
  #chunks: Buffer[] = [];

  onRequestHead(head: RequestHead): void {
    this.#chunks = [];
    this.messages.push({ head, body: Buffer.alloc(0), trailers: undefined, ended: false, tunnel: false });
  }
  onResponseHead(head: ResponseHead): void {
    this.onRequestHead(head as unknown as RequestHead);
  }
  onBody(chunk: Buffer): boolean {
    this.#chunks.push(Buffer.from(chunk));
    return true;
  }
  onMessageEnd(trailers: HeaderList | undefined): void {
    const m = this.messages[this.messages.length - 1]!;
    m.body = Buffer.concat(this.#chunks);
    m.trailers = trailers;
    m.ended = true;
  }
  onParseError(err: ProxyError, status: number): void {
    this.error = err;
    this.status = status;
  }
  /** The body received so far of the last message (for one cut by EOF). */
  partialBody(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/**
 * Feeds `input` in pieces cut at `splits` (sorted offsets), re-executing after
 * each stop the way a connection does. Returns the recorder and the offset of
 * the bytes left after a tunnel head (or -1).
 */
export function feed(mode: 'request' | 'response', input: Buffer, splits: number[] = [], o: H1ParserOptions = {}, eof = false, method?: string): { rec: Recorder; parser: H1Parser; rest: number } {
  const rec = new Recorder();
  const parser = new H1Parser(mode, rec, o);
  if (method !== undefined) parser.requestMethod = method;
  let start = 0;
  let consumed = 0;
  const cuts = [...splits.filter((s) => s > 0 && s < input.length), input.length];
  for (const cut of cuts) {
    const piece = input.subarray(start, cut);
    let off = 0;
    while (off < piece.length && rec.error === undefined) {
      off = parser.execute(piece, off);
      if (parser.tunneled) {
        rec.messages[rec.messages.length - 1]!.tunnel = true;
        return { rec, parser, rest: start + off };
      }
    }
    consumed = cut;
    start = cut;
  }
  void consumed;
  if (eof && rec.error === undefined) {
    if (!parser.finish()) rec.error = { code: 'TRUNCATED', message: 'truncated' } as unknown as ProxyError;
  }
  return { rec, parser, rest: -1 };
}


const pairs: Socket[] = [];
/** Destroys every loopback socket a test made (call from after(): a failed test must not keep the process alive). */
export function closeLoopbacks(): void {
  for (const s of pairs.splice(0)) s.destroy();
}

/** A connected loopback TCP pair (server side created with allowHalfOpen, as the proxy's listener does). */
export async function loopback(): Promise<{ client: Socket; server: Socket; close(): void }> {
  const srv: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const accepted = once(srv, 'connection');
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(client, 'connect');
  const [server] = (await accepted) as [Socket];
  srv.close();
  pairs.push(client, server);
  return {
    client,
    server,
    close(): void {
      client.destroy();
      server.destroy();
    },
  };
}

/** Everything a socket sends until it ends or `until` matches. */
export function collect(s: Socket, until?: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      s.off('data', onData);
      resolve(text);
    };
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (until?.(text)) done();
    };
    s.on('data', onData);
    s.once('end', done);
    s.once('close', done);
  });
}

/** Polls until cond() holds (tests on real sockets), failing after `ms`. */
export async function eventually(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
