// The lines of a head: start lines and header fields, checked byte by byte
// against RFC 9112's grammar, with what they say about framing collected on
// the way (Content-Length, Transfer-Encoding, Connection, Upgrade, Expect) so
// that no second pass over the names is needed.
import type { HeaderList } from '../message/types.js';
import type { BodyKind } from './parser.js';
import { commonName } from '../headers.js';
import { AUTHORITY, CR, equalsLower, HTAB, REASON, SP, TARGET, TOKEN, VALUE } from './chars.js';

/** Buffer's own latin1 decoder without toString()'s argument juggling (a Node internal, stable since v0). */
interface Latin1 {
  latin1Slice(start: number, end: number): string;
}
export function latin1(b: Buffer, s: number, e: number): string {
  return (b as unknown as Latin1).latin1Slice(s, e);
}

/** Bytes s..e of b as text: cut from the head decoded once when it covers them, else decoded now. */
function decode(b: Buffer, s: number, e: number, scan: HeadScan): string {
  const t = scan.text;
  if (t !== undefined && scan.textOf === b) {
    const from = s - scan.textAt;
    if (from >= 0 && e - scan.textAt <= t.length) return t.slice(from, e - scan.textAt);
  }
  return latin1(b, s, e);
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
  /** An empty Content-Length: refused with the head (llhttp waits for the head's end too). */
  clEmpty = false;
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
  /**
   * The whole head, decoded once, when it arrived complete in one buffer (`textOf`): lines
   * are then cut from it as substrings instead of each crossing into C++ to be decoded.
   */
  text: string | undefined;
  /** The buffer `text` was decoded from, and the offset its first character came from. */
  textOf: Buffer | undefined;
  textAt = 0;

  clear(): void {
    this.started = false;
    this.text = undefined;
    this.textOf = undefined;
    this.headers = [];
    this.count = 0;
    this.clCount = 0;
    this.clInvalid = false;
    this.clEmpty = false;
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
    if (this.clInvalid || this.clEmpty) return this.#refuse('invalid content-length');
    // Even identical repeated values are refused: a proxy that picks one and a
    // server that picks the other disagree on where the message ends.
    if (this.clCount > 1) return this.#refuse('several content-length fields');
    if (this.teFields > 0) {
      if (this.clCount > 0) return this.#refuse('content-length with transfer-encoding');
      if (this.teChunked > 1) return this.#refuse('chunked applied more than once');
      // Any other coding would reach the other side undeclared: Transfer-Encoding is
      // not forwarded (HTTP/2 between the proxies has none), and we do not decode
      // gzip. A server applies one only when the request's TE asked for it, and TE
      // is a hop-by-hop field the proxy does not forward; a response with one is 502.
      if (this.teChunked !== 1 || this.teOther !== 0) return this.#refuse('transfer-encoding other than chunked');
      return request || this.teLastChunked ? 'chunked' : 'close';
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

/**
 * RFC 9112 §3.2's forms: origin ("/..."), asterisk ("*"), authority (CONNECT's),
 * absolute ("scheme://authority..."; letters-only schemes and at most one "@",
 * as llhttp reads them, so that both parsers see the same target).
 */
export function targetForm(b: Buffer, ms: number, me: number, ts: number, te: number): boolean {
  const c = b[ts];
  if (c === 0x2f || c === 0x2a) return true;
  if (me - ms === 7 && latin1(b, ms, me) === 'CONNECT') return true;
  let i = ts;
  while (i < te && ((b[i]! | 0x20) >= 0x61 && (b[i]! | 0x20) <= 0x7a)) i++;
  if (i === ts || te - i < 3 || b[i] !== 0x3a || b[i + 1] !== 0x2f || b[i + 2] !== 0x2f) return false;
  let at = 0;
  for (i += 3; i < te; i++) {
    const x = b[i]!;
    // "#" right in the authority is refused (llhttp does too), not taken as a fragment.
    if (x === 0x2f || x === 0x3f) break;
    if (AUTHORITY[x] !== 1) return false;
    if (x === 0x40 && ++at > 1) return false;
  }
  return true;
}

/** request-line = method SP request-target SP HTTP-version, single spaces, nothing else. */
export function parseRequestLine(b: Buffer, s: number, e: number, scan: HeadScan): LineError | undefined {
  let i = s;
  while (i < e && TOKEN[b[i]!] === 1) i++;
  if (i === s || b[i] !== SP || i >= e) return { status: 400, message: b[i] === CR ? 'bare CR' : 'invalid method' };
  const ts = i + 1;
  let t = ts;
  while (t < e && TARGET[b[t]!] === 1) t++;
  if (b[ts] === SP || b[t + 1] === SP) return { status: 400, message: 'several spaces in the request line' };
  if (t === e && t > ts) return { status: 400, message: 'missing HTTP version (HTTP/0.9)' };
  if (t === ts || b[t] !== SP || t >= e || !targetForm(b, s, i, ts, t)) return { status: 400, message: 'invalid request-target' };
  const v = version(b, t + 1, e);
  if (v >= 400) return { status: v, message: v === 505 ? 'HTTP version not supported' : 'invalid HTTP version' };
  scan.started = true;
  const line = decode(b, s, t, scan);
  scan.method = line.slice(0, i - s);
  scan.target = line.slice(ts - s);
  scan.version = v;
  return undefined;
}

/** status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing last SP is tolerated. */
export function parseStatusLine(b: Buffer, s: number, e: number, scan: HeadScan): LineError | undefined {
  if (b[s] === CR) return { status: 502, message: 'bare CR' };
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
  scan.reason = rs < e ? decode(b, rs, e, scan) : '';
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
  // A common name is a constant (no string made for it); otherwise one decode per line, then
  // substrings: crossing into C++ once instead of twice (measured ~25% of a head's cost).
  const common = commonName(b, s, i);
  if (common !== undefined) scan.headers.push(common, decode(b, vs, ve, scan));
  else {
    const line = decode(b, s, ve, scan);
    scan.headers.push(line.slice(0, i - s), line.slice(vs - s));
  }
  scan.count++;
  if (!framing) return undefined;
  switch (i - s) {
    case 14:
      if (equalsLower(b, s, i, 'content-length')) {
        contentLength(b, vs, ve, scan);
        // llhttp refuses a tab after the number: so do we, or one of us would frame a body the other refuses.
        if (hasTab(b, ve, e)) scan.clInvalid = true;
      }
      break;
    case 17:
      if (equalsLower(b, s, i, 'transfer-encoding')) {
        transferEncoding(b, vs, ve, scan);
        if (hasTab(b, ve, e)) {
          scan.teOther++;
          scan.teLastChunked = false;
        }
      }
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

function hasTab(b: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (b[i] === HTAB) return true;
  return false;
}

function contentLength(b: Buffer, s: number, e: number, scan: HeadScan): void {
  scan.clCount++;
  if (e === s) return void (scan.clEmpty = true);
  if (e - s > MAX_CL_DIGITS) return void (scan.clInvalid = true);
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 0x30;
    // Digits only: no sign, no list ("5, 5"), no inner space.
    if (d < 0 || d > 9) return void (scan.clInvalid = true);
    n = n * 10 + d;
  }
  scan.contentLength = n;
}

/** Calls each(b, s, e) on the trimmed elements of a comma-separated list; empty ones only with `empties`. */
function eachElement(b: Buffer, s: number, e: number, scan: HeadScan, each: (b: Buffer, s: number, e: number, scan: HeadScan) => void, empties = false): void {
  let i = s;
  while (i <= e) {
    let j = i;
    while (j < e && b[j] !== 0x2c) j++;
    let es = i;
    let ee = j;
    while (es < ee && (b[es] === SP || b[es] === HTAB)) es++;
    while (ee > es && (b[ee - 1] === SP || b[ee - 1] === HTAB)) ee--;
    if (ee > es || (empties && i > s)) each(b, es, ee, scan);
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
  // "chunked," ends in an empty coding, not in chunked (llhttp reads it so too).
  eachElement(b, s, e, scan, teElement, true);
}

function connElement(b: Buffer, s: number, e: number, scan: HeadScan): void {
  if (equalsLower(b, s, e, 'close')) scan.connClose = true;
  else if (equalsLower(b, s, e, 'keep-alive')) scan.connKeepAlive = true;
  else if (equalsLower(b, s, e, 'upgrade')) scan.connUpgrade = true;
}

function connection(b: Buffer, s: number, e: number, scan: HeadScan): void {
  eachElement(b, s, e, scan, connElement);
}
