// Chunk-size lines (RFC 9112 §7.1): a hex size and extensions. RFC 9112
// allows BWS around ";" and "="; llhttp in strict mode does not, and neither do
// we: a parser that skips the whitespace and one that does not must never both
// accept the same line.
import { HEX, HTAB, QDTEXT, TOKEN } from './chars.js';

const BAD_SIZE = -1;
const TOO_LARGE = -2;
const BAD_EXTENSION = -3;

export function chunkError(code: number): string {
  return code === TOO_LARGE ? 'chunk size too large' : code === BAD_SIZE ? 'invalid chunk size' : 'invalid chunk extension';
}

/** The size of a complete chunk-size line b[s..e) (CRLF excluded), or a negative code for chunkError(). */
export function parseChunkSize(b: Buffer, s: number, e: number): number {
  let i = s;
  let n = 0;
  for (; i < e; i++) {
    const h = HEX[b[i]!]!;
    if (h === 0) break;
    n = n * 16 + h - 1;
    // Past 2^53 the arithmetic stops being exact: a size we cannot count is refused.
    if (n > Number.MAX_SAFE_INTEGER) return TOO_LARGE;
  }
  if (i === s) return BAD_SIZE;
  // chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] )
  while (i < e) {
    if (b[i] !== 0x3b) return BAD_EXTENSION;
    i++;
    const ns = i;
    while (i < e && TOKEN[b[i]!] === 1) i++;
    if (i === ns) return BAD_EXTENSION;
    if (i < e && b[i] === 0x3d) {
      i++;
      if (i < e && b[i] === 0x22) {
        i++;
        for (;;) {
          if (i >= e) return BAD_EXTENSION;
          const c = b[i]!;
          if (c === 0x22) break;
          if (c === 0x5c) {
            i++;
            if (i >= e || (b[i]! < 0x20 && b[i] !== HTAB) || b[i] === 0x7f) return BAD_EXTENSION;
          } else if (QDTEXT[c] !== 1) return BAD_EXTENSION;
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < e && TOKEN[b[i]!] === 1) i++;
        if (i === vs) return BAD_EXTENSION;
      }
    }
  }
  return n;
}

/** A chunk-size line so far: hex digits, then `;name[=token|"quoted"]`s, each possibly cut short. */
export function partialChunkLine(b: Buffer, s: number, e: number): string | undefined {
  let i = s;
  while (i < e && ((b[i]! >= 0x30 && b[i]! <= 0x39) || ((b[i]! | 0x20) >= 0x61 && (b[i]! | 0x20) <= 0x66))) i++;
  if (i === e) return undefined;
  if (i === s) return 'invalid chunk size';
  while (i < e) {
    if (b[i] !== 0x3b) return 'invalid chunk extension';
    const ns = ++i;
    while (i < e && TOKEN[b[i]!] === 1) i++;
    if (i === e) return undefined;
    if (i === ns) return 'invalid chunk extension';
    if (b[i] !== 0x3d) continue;
    i++;
    if (i === e) return undefined;
    if (b[i] === 0x22) {
      for (i++; i < e && b[i] !== 0x22; i++) {
        if (b[i] === 0x5c) i++;
        else if (QDTEXT[b[i]!] !== 1) return 'invalid chunk extension';
      }
      if (i >= e) return undefined;
      i++;
    } else {
      const vs = i;
      while (i < e && TOKEN[b[i]!] === 1) i++;
      if (i === vs) return 'invalid chunk extension';
    }
  }
  return undefined;
}

