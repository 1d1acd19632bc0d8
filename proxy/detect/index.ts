// Protocol detection on the first bytes of every accepted connection:
//   h2 preface → TLS ClientHello → HTTP/1 request line → otherwise opaque.
// classify() judges a prefix; detect() reads a socket until classify() decides,
// then hands the socket back paused with every byte it read put back.
import type { Socket } from 'node:net';
import { matchPreface, matchRequestLine } from './http.js';
import { Peek } from './peek.js';
import { parseClientHello, RECORD_HANDSHAKE } from './tls.js';
import { H2, HTTP1, NEED_MORE, TOO_LARGE, UNKNOWN_PROTOCOL, type Detected, type Verdict } from './verdict.js';

export type { Detected, OpaqueReason, Verdict } from './verdict.js';
export type { Peek } from './peek.js';
export { parseClientHello, type ClientHello } from './tls.js';

export interface DetectOptions {
  /** How long to wait for a decision; then the connection goes on as opaque (server-speaks-first protocols). */
  timeoutMs: number;
  /** How many bytes may be held back from the application while deciding. */
  maxBytes: number;
  /**
   * A stream whose first bytes begin an HTTP/1 request line is decided by
   * then (as HTTP/1, whose server answers a head still incomplete with 408).
   */
  httpTimeoutMs?: number;
}

export const detectDefaults: Readonly<DetectOptions> = Object.freeze({ timeoutMs: 10_000, maxBytes: 8192 });

/**
 * Pure and total. Only the first maxBytes bytes are judged, so the verdict does not
 * depend on how the stream was chunked, and a verdict, once reached, never changes
 * as more bytes are appended.
 */
export function classify(prefix: Buffer, maxBytes: number): Verdict {
  if (prefix.length === 0) return NEED_MORE;
  const limit = byteLimit(maxBytes);
  const buf = prefix.length > limit ? prefix.subarray(0, limit) : prefix;
  const verdict = judge(buf);
  return verdict === NEED_MORE && buf.length >= limit ? TOO_LARGE : verdict;
}

/** A whole number of bytes, at least one: a fractional or NaN limit would never be reached. */
const byteLimit = (maxBytes: number): number => (maxBytes >= 1 ? Math.floor(maxBytes) : 1);

function judge(buf: Buffer): Verdict {
  if (buf.length === 0) return NEED_MORE;
  // First: "PRI * HTTP/2.0\r\n" would also pass as an HTTP/1 request line.
  const preface = matchPreface(buf);
  if (preface !== 'no') return preface === 'yes' ? H2 : NEED_MORE;
  // 0x16 is no token character, so a stream that fails as TLS cannot be HTTP/1 either.
  if (buf[0] === RECORD_HANDSHAKE) {
    const hello = parseClientHello(buf);
    if (hello.kind === 'need-more') return NEED_MORE;
    if (hello.kind === 'not-tls') return UNKNOWN_PROTOCOL;
    return { kind: 'tls', sni: hello.sni, alpn: hello.alpn };
  }
  const line = matchRequestLine(buf);
  return line === 'yes' ? HTTP1 : line === 'no' ? UNKNOWN_PROTOCOL : NEED_MORE;
}

/**
 * Never rejects. Resolves with the protocol, or opaque with why: a decision, 'timeout',
 * 'too-large', 'eof' (bytes so far still replayed) or 'error'. On resolution no listener
 * or timer of detection remains and the socket is paused: call resume() (or hand it to
 * a server that reads it) to receive the bytes again from the first.
 */
export function detect(socket: Socket, opts: DetectOptions): Promise<Detected> {
  return new Promise((resolve) => new Peek(socket, opts.timeoutMs, byteLimit(opts.maxBytes), classify, resolve, opts.httpTimeoutMs).start());
}

/**
 * detect(), with a handle: `onQuiet` runs once if the client sent nothing for
 * `quietMs`, and abort() ends detection early with a verdict of the caller's
 * (detect/server-first.ts: the server spoke first). `resolve` gets the verdict.
 */
export function startDetect(socket: Socket, opts: DetectOptions, resolve: (d: Detected) => void, quiet?: { ms: number; onQuiet: () => void }): Peek {
  const peek = new Peek(socket, opts.timeoutMs, byteLimit(opts.maxBytes), classify, resolve, opts.httpTimeoutMs, quiet);
  peek.start();
  return peek;
}
