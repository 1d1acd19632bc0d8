// The two plaintext HTTP openings: the HTTP/2 prior-knowledge preface (RFC 9113 §3.4)
// and an HTTP/1 request line (RFC 9112 §3). Both are judged byte by byte, so a prefix
// that can no longer become one of them is rejected as soon as the deciding byte arrives.
import { Buffer } from 'node:buffer';

export type Match = 'yes' | 'no' | 'need-more';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function matchPreface(buf: Buffer): Match {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (H2_PREFACE.compare(buf, 0, n, 0, n) !== 0) return 'no';
  return n === H2_PREFACE.length ? 'yes' : 'need-more';
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION = Buffer.from('HTTP/1.', 'latin1'); // then '0' or '1'

/**
 * Registered methods are at most 17 characters (UPDATEREDIRECTREF). A longer run of
 * token characters is some other text protocol; without a bound it would be
 * "need more" until maxBytes and stall the connection for nothing.
 */
export const MAX_METHOD_LENGTH = 32;

function byteSet(ranges: Array<[number, number]>, singles = ''): Uint8Array {
  const set = new Uint8Array(256);
  for (const [lo, hi] of ranges) set.fill(1, lo, hi + 1);
  for (let i = 0; i < singles.length; i++) set[singles.charCodeAt(i)] = 1;
  return set;
}

/** tchar (RFC 9110 §5.6.2): the characters of a method token. */
const TCHAR = byteSet([[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]], "!#$%&'*+-.^_`|~");

/**
 * Visible ASCII: no space or control byte can be part of a request-target, and
 * obs-text is not either; Node's parser answers 400 to raw non-ASCII, while as
 * opaque bytes such a connection still reaches the application.
 */
const TARGET = byteSet([[0x21, 0x7e]]);

/** `method SP request-target SP HTTP/1.0|HTTP/1.1 CRLF` at the start of `buf`. */
export function matchRequestLine(buf: Buffer): Match {
  const len = buf.length;
  let i = 0;
  const methodLimit = Math.min(len, MAX_METHOD_LENGTH + 1);
  while (i < methodLimit && TCHAR[buf[i]!] === 1) i++;
  if (i > MAX_METHOD_LENGTH) return 'no';
  if (i === len) return 'need-more';
  if (i === 0 || buf[i] !== SP) return 'no';

  const target = ++i;
  while (i < len && TARGET[buf[i]!] === 1) i++;
  if (i === len) return 'need-more';
  if (i === target || buf[i] !== SP) return 'no';
  i++;

  for (let k = 0; k < VERSION.length; k++, i++) {
    if (i === len) return 'need-more';
    if (buf[i] !== VERSION[k]) return 'no';
  }
  if (i === len) return 'need-more';
  if (buf[i] !== 0x30 && buf[i] !== 0x31) return 'no';
  if (++i === len) return 'need-more';
  if (buf[i] !== CR) return 'no';
  if (++i === len) return 'need-more';
  return buf[i] === LF ? 'yes' : 'no';
}
