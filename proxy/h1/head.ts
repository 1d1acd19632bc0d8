// The lines of a head: start lines and header fields, checked byte by byte
// against RFC 9112's grammar, with what they say about framing collected on
// the way (Content-Length, Transfer-Encoding, Connection, Upgrade, Expect) so
// that no second pass over the names is needed.
import type { HeaderList } from '../message/types.js';
import type { BodyKind } from './parser.js';
import { equalsLower, HTAB, REASON, SP, TARGET, TOKEN, VALUE } from './chars.js';

/** Buffer's own latin1 decoder without toString()'s argument juggling (a Node internal, stable since v0). */
interface Latin1 {
  latin1Slice(start: number, end: number): string;
}
export function latin1(b: Buffer, s: number, e: number): string {
  return (b as unknown as Latin1).latin1Slice(s, e);
}

export interface LineError {
  status: number;
  message: string;
}

/** Content-Length up to 15 digits stays below 2^53 (exact arithmetic). */
const MAX_CL_DIGITS = 15;

export class HeadScan {
  started = false;
  method = '';
  target = '';
  version = 11;
  status = 0;
  reason = '';
  headers: HeaderList = [];
  count = 0;
  clCount = 0;
  clInvalid = false;
  contentLength = 0;
  teFields = 0;
  teChunked = 0;
  teOther = 0;
  teLastChunked = false;
  connClose = false;
  connKeepAlive = false;
  connUpgrade = false;
  upgrade = false;
  expectContinue = false;

  clear(): void {
    this.started = false;
    this.headers = [];
    this.count = 0;
    this.clCount = 0;
    this.clInvalid = false;
    this.contentLength = 0;
    this.teFields = 0;
    this.teChunked = 0;
    this.teOther = 0;
    this.teLastChunked = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.upgrade = false;
    this.expectContinue = false;
  }

  /** Why framing() returned undefined. */
  why = '';

  /** How the body is delimited (RFC 9112 §6.3); undefined (and `why`) when the head cannot be read one way only. */
  framing(request: boolean): BodyKind | undefined {
    if (this.clInvalid) return this.#refuse('invalid content-length');
    // Even identical repeated values are refused: a proxy that picks one and a
    // server that picks the other disagree on where the message ends.
    if (this.clCount > 1) return this.#refuse('several content-length fields');
    if (this.teFields > 0) {
      if (this.clCount > 0) return this.#refuse('content-length with transfer-encoding');
      if (this.teChunked > 1) return this.#refuse('chunked applied more than once');
      if (request) {
        // Any other coding would reach the server undeclared once we decode the chunks.
        if (this.teChunked !== 1 || this.teOther !== 0) return this.#refuse('transfer-encoding other than chunked');
        return 'chunked';
      }
      return this.teLastChunked ? 'chunked' : 'close';
    }
    if (this.clCount === 1) return 'length';
    return request ? 'none' : 'close';
  }

  #refuse(why: string): undefined {
    this.why = why;
    return undefined;
  }

  keepAlive(): boolean {
    if (this.connClose) return false;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing may be faulty: close after it.
    if (this.version === 10) return this.connKeepAlive && this.teFields === 0;
    return true;
  }
}

/** "HTTP/1.0" | "HTTP/1.1" → 10 | 11; another well-formed HTTP/x.y → 505; else 400. */
function version(b: Buffer, s: number, e: number): number {
  if (e - s !== 8 || b[s] !== 0x48 || b[s + 1] !== 0x54 || b[s + 2] !== 0x54 || b[s + 3] !== 0x50 || b[s + 4] !== 0x2f || b[s + 6] !== 0x2e) return 400;
  const major = b[s + 5]! - 0x30;
  const minor = b[s + 7]! - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return 400;
  if (major === 1 && minor <= 1) return 10 + minor;
  return 505;
}

/** request-line = method SP request-target SP HTTP-version, single spaces, nothing else. */
export function parseRequestLine(b: Buffer, s: number, e: number, scan: HeadScan): LineError | undefined {
  let i = s;
  while (i < e && TOKEN[b[i]!] === 1) i++;
  if (i === s || b[i] !== SP || i >= e) return { status: 400, message: 'invalid method' };
  const ts = i + 1;
  let t = ts;
  while (t < e && TARGET[b[t]!] === 1) t++;
  if (t === ts || b[t] !== SP || t >= e) return { status: 400, message: 'invalid request-target' };
  const v = version(b, t + 1, e);
  if (v >= 400) return { status: v, message: v === 505 ? 'HTTP version not supported' : 'invalid HTTP version' };
  scan.started = true;
  scan.method = latin1(b, s, i);
  scan.target = latin1(b, ts, t);
  scan.version = v;
  return undefined;
}

/** status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing last SP is tolerated. */
export function parseStatusLine(b: Buffer, s: number, e: number, scan: HeadScan): LineError | undefined {
  const v = version(b, s, Math.min(s + 8, e));
  if (v >= 400 || b[s + 8] !== SP || e < s + 12) return { status: 502, message: 'invalid status line' };
  const d0 = b[s + 9]! - 0x30;
  const d1 = b[s + 10]! - 0x30;
  const d2 = b[s + 11]! - 0x30;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return { status: 502, message: 'invalid status code' };
  let rs = s + 12;
  if (rs < e) {
    if (b[rs] !== SP) return { status: 502, message: 'invalid status line' };
    rs++;
    for (let i = rs; i < e; i++) if (REASON[b[i]!] !== 1) return { status: 502, message: 'invalid reason phrase' };
  }
  scan.started = true;
  scan.version = v;
  scan.status = d0 * 100 + d1 * 10 + d2;
  scan.reason = rs < e ? latin1(b, rs, e) : '';
  return undefined;
}

/**
 * field-line = field-name ":" OWS field-value OWS. Appends [name, value] to the
 * scan's headers; with `framing`, notes the fields that decide the body's length.
 */
export function parseHeaderLine(b: Buffer, s: number, e: number, scan: HeadScan, framing: boolean): string | undefined {
  const first = b[s];
  // obs-fold: a continuation line. Refused, not unfolded: agents disagree on it.
  if (first === SP || first === HTAB) return 'obsolete line folding';
  let i = s;
  while (i < e && TOKEN[b[i]!] === 1) i++;
  if (i >= e || b[i] !== 0x3a) return b[i] === SP || b[i] === HTAB ? 'whitespace before colon' : 'invalid header name';
  if (i === s) return 'empty header name';
  let vs = i + 1;
  while (vs < e && (b[vs] === SP || b[vs] === HTAB)) vs++;
  let ve = e;
  while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
  for (let k = vs; k < ve; k++) if (VALUE[b[k]!] !== 1) return 'invalid character in header value';
  scan.headers.push(latin1(b, s, i), latin1(b, vs, ve));
  scan.count++;
  if (!framing) return undefined;
  switch (i - s) {
    case 14:
      if (equalsLower(b, s, i, 'content-length')) contentLength(b, vs, ve, scan);
      break;
    case 17:
      if (equalsLower(b, s, i, 'transfer-encoding')) transferEncoding(b, vs, ve, scan);
      break;
    case 10:
      if (equalsLower(b, s, i, 'connection')) connection(b, vs, ve, scan);
      break;
    case 7:
      if (equalsLower(b, s, i, 'upgrade')) scan.upgrade = true;
      break;
    case 6:
      if (equalsLower(b, s, i, 'expect') && equalsLower(b, vs, ve, '100-continue')) scan.expectContinue = true;
      break;
  }
  return undefined;
}

function contentLength(b: Buffer, s: number, e: number, scan: HeadScan): void {
  scan.clCount++;
  if (e === s || e - s > MAX_CL_DIGITS) return void (scan.clInvalid = true);
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 0x30;
    // Digits only: no sign, no list ("5, 5"), no inner space.
    if (d < 0 || d > 9) return void (scan.clInvalid = true);
    n = n * 10 + d;
  }
  scan.contentLength = n;
}

/** Calls each(b, s, e) on the trimmed non-empty elements of a comma-separated list. */
function eachElement(b: Buffer, s: number, e: number, scan: HeadScan, each: (b: Buffer, s: number, e: number, scan: HeadScan) => void): void {
  let i = s;
  while (i <= e) {
    let j = i;
    while (j < e && b[j] !== 0x2c) j++;
    let es = i;
    let ee = j;
    while (es < ee && (b[es] === SP || b[es] === HTAB)) es++;
    while (ee > es && (b[ee - 1] === SP || b[ee - 1] === HTAB)) ee--;
    if (ee > es) each(b, es, ee, scan);
    i = j + 1;
  }
}

function teElement(b: Buffer, s: number, e: number, scan: HeadScan): void {
  if (equalsLower(b, s, e, 'chunked')) {
    scan.teChunked++;
    scan.teLastChunked = true;
  } else {
    scan.teOther++;
    scan.teLastChunked = false;
  }
}

function transferEncoding(b: Buffer, s: number, e: number, scan: HeadScan): void {
  scan.teFields++;
  // An empty Transfer-Encoding is still a Transfer-Encoding that is not chunked.
  if (e === s) {
    scan.teOther++;
    scan.teLastChunked = false;
    return;
  }
  eachElement(b, s, e, scan, teElement);
}

function connElement(b: Buffer, s: number, e: number, scan: HeadScan): void {
  if (equalsLower(b, s, e, 'close')) scan.connClose = true;
  else if (equalsLower(b, s, e, 'keep-alive')) scan.connKeepAlive = true;
  else if (equalsLower(b, s, e, 'upgrade')) scan.connUpgrade = true;
}

function connection(b: Buffer, s: number, e: number, scan: HeadScan): void {
  eachElement(b, s, e, scan, connElement);
}
