// Lines cut short by the end of a read, checked as far as they go: garbage is
// refused as it arrives rather than at the head timeout, and the parser gives
// up on the same byte as llhttp would (the fuzzer's differential relies on it).
import { AUTHORITY, CR, equalsLower, HTAB, SP, TARGET, TOKEN, VALUE } from './chars.js';
import { latin1, targetForm } from './head.js';

const HTTP_SLASH = 'HTTP/';

/**
 * An incomplete request line or field line that can already be told wrong:
 * garbage is refused as it arrives instead of at the head timeout. Returns the
 * refusal or undefined (fine so far). `e` excludes a trailing CR.
 */
export function partialLine(b: Buffer, s: number, e: number, startLine: 'request' | 'status' | undefined, crEnded: boolean): string | undefined {
  if (s === e) return undefined;
  if (startLine === 'status') {
    if (b[s] === CR) return 'bare CR';
    for (let k = s, j = 0; k < e && j < 13; k++, j++) {
      const c = b[k]!;
      const digit = c >= 0x30 && c <= 0x39;
      const ok = j < 5 ? c === HTTP_SLASH.charCodeAt(j) : j === 6 ? c === 0x2e : j === 8 || j === 12 ? c === SP : digit;
      if (!ok) return 'invalid status line';
    }
    return undefined;
  }
  if (startLine === 'request') {
    let i = s;
    while (i < e && TOKEN[b[i]!] === 1) i++;
    if (i === e) return undefined;
    if (b[i] !== SP || i === s) return b[i] === CR ? 'bare CR' : 'invalid method';
    let t = i + 1;
    while (t < e && TARGET[b[t]!] === 1) t++;
    if (b[i + 1] === SP || (t + 1 < e && b[t + 1] === SP)) return 'several spaces in the request line';
    if (!targetPrefix(b, s, i, i + 1, t)) return 'invalid request-target';
    if (t === e) return undefined;
    if (b[t] !== SP || t === i + 1 || !targetForm(b, s, i, i + 1, t)) return 'invalid request-target';
    for (let k = t + 1, j = 0; k < e; k++, j++) {
      const c = b[k]!;
      const ok = j < 5 ? c === HTTP_SLASH.charCodeAt(j) : j === 6 ? c === 0x2e : j < 8 && c >= 0x30 && c <= 0x39;
      if (!ok) return 'invalid HTTP version';
    }
    return undefined;
  }
  if (b[s] === SP || b[s] === HTAB) return 'obsolete line folding';
  let i = s;
  while (i < e && TOKEN[b[i]!] === 1) i++;
  // A line already ended by CR must have had its colon.
  if (i === e) return crEnded ? 'invalid header name' : undefined;
  if (b[i] !== 0x3a || i === s) return 'invalid header name';
  for (let k = i + 1; k < e; k++) if (VALUE[b[k]!] !== 1) return 'invalid character in header value';
  if (equalsLower(b, s, i, 'content-length')) {
    let k = i + 1;
    while (k < e && (b[k] === SP || b[k] === HTAB)) k++;
    while (k < e && b[k]! >= 0x30 && b[k]! <= 0x39) k++;
    while (k < e && b[k] === SP) k++;
    if (k < e) return 'invalid content-length';
  }
  return undefined;
}

/** Could a target starting with b[ts..te) still be of one of the forms? */
function targetPrefix(b: Buffer, ms: number, me: number, ts: number, te: number): boolean {
  if (te === ts) return true;
  const c = b[ts];
  if (c === 0x2f || c === 0x2a || (me - ms === 7 && latin1(b, ms, me) === 'CONNECT')) return true;
  let i = ts;
  while (i < te && (b[i]! | 0x20) >= 0x61 && (b[i]! | 0x20) <= 0x7a) i++;
  if (i === ts && i < te) return false;
  for (let j = 0; i < te && j < 3; i++, j++) if (b[i] !== (j === 0 ? 0x3a : 0x2f)) return false;
  let at = 0;
  for (; i < te; i++) {
    const x = b[i]!;
    if (x === 0x2f || x === 0x3f) break;
    if (AUTHORITY[x] !== 1 || (x === 0x40 && ++at > 1)) return false;
  }
  return true;
}

