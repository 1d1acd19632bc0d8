// Test and fuzz helpers: a parser listener that records what it is told, and
// a driver feeding input at chosen split points.
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
