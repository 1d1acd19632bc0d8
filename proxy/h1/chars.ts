// Byte classes of RFC 9110 §5.6 and RFC 9112, as lookup tables: the parser
// checks every byte of a head against one of these, so a table read beats a
// chain of comparisons on the hot path.

function table(pred: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = pred(b) ? 1 : 0;
  return t;
}

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isAlpha = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

/** tchar: what header names, methods and chunk-extension names are made of. */
export const TOKEN = table((b) => isDigit(b) || isAlpha(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));

/** field-vchar / SP / HTAB / obs-text: no controls but HTAB, no DEL; CR and LF fall out here. */
export const VALUE = table((b) => b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80);

/**
 * A request-target byte: visible ASCII; no SP, no controls, no DEL, and no bytes
 * above 0x7f (raw UTF-8 must be percent-encoded; llhttp refuses it too).
 */
export const TARGET = table((b) => b > 0x20 && b < 0x7f);

/** The authority of an absolute-form target: unreserved, sub-delims, ":", "@", "[", "]", "%". */
export const AUTHORITY = table((b) => isDigit(b) || isAlpha(b) || "-._~!$&'()*+,;=:@[]%".includes(String.fromCharCode(b)));

/** Reason phrase: HTAB / SP / VCHAR / obs-text. */
export const REASON = VALUE;

/** Hex digit → value + 1 (0 = not hex), so one read both tests and converts. */
export const HEX = table(() => false);
for (let b = 0; b < 256; b++) {
  if (isDigit(b)) HEX[b] = b - 0x30 + 1;
  else if (b >= 0x41 && b <= 0x46) HEX[b] = b - 0x41 + 11;
  else if (b >= 0x61 && b <= 0x66) HEX[b] = b - 0x61 + 11;
}

/** qdtext of a quoted-string (chunk-extension values). */
export const QDTEXT = table((b) => b === 0x09 || b === 0x20 || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80);

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;

/** ASCII case-insensitive compare of buf[s..s+lower.length) with an all-lower-case name. */
export function equalsLower(buf: Buffer, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((buf[s + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}
