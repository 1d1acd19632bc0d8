// HPACK's static Huffman code (RFC 7541 Appendix B): a table-driven decoder and an encoder.
//
// The RFC's code is canonical: listing the symbols by (code length, symbol), each code is the
// previous one plus one, shifted left when the length grows. So the code lengths of the RFC's
// list are enough to regenerate every code; huffman.test.ts checks codes against the RFC's hex.

/** Bit length of the code of each symbol 0..255 and EOS (256), from RFC 7541 Appendix B. */
// prettier-ignore
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, // 0x20  ' ' .. '/'
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, // 0x30  '0' .. '?'
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, // 0x40  '@' .. 'O'
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, // 0x50  'P' .. '_'
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, // 0x60  '`' .. 'o'
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 0x70  'p' .. DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, // EOS
];

const EOS = 256;

/** Code of each symbol, right-aligned (at most 30 bits, so a small integer). */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = new Uint8Array(LENGTHS);

function assignCanonicalCodes(): void {
  const order = Array.from({ length: 257 }, (_, i) => i);
  order.sort((a, b) => LENGTHS[a]! - LENGTHS[b]! || a - b);
  let code = 0;
  let len = LENGTHS[order[0]!]!;
  for (const sym of order) {
    code *= 2 ** (LENGTHS[sym]! - len);
    len = LENGTHS[sym]!;
    HUFFMAN_CODES[sym] = code;
    code++;
  }
  // A complete prefix code ends exactly at 2^len: a wrong length in the list would not.
  if (code !== 2 ** len) throw new Error('HPACK Huffman code lengths do not form a complete code');
}
assignCanonicalCodes();

// ---- Decoder: a byte-at-a-time state machine ----
//
// States are the 256 internal nodes of the code tree (0 = root, i.e. at a symbol boundary).
// Feeding one input byte to a state walks 8 bits. The shortest code is 5 bits, so one byte
// completes at most two symbols (the tail of one, then a whole 5-bit one): each (state, byte)
// transition is one table entry:
//   bits 0-7    next state
//   bits 8-15   first symbol completed in this byte
//   bits 16-23  second symbol completed in this byte
//   bits 24-25  how many symbols were completed (0..2)
//   FLAG_FAIL   the walk decoded EOS, which RFC 7541 5.2 makes an error
//   FLAG_ACCEPT the next state is a valid place for the string to end: the root, or a node at
//               most 7 bits deep reached by 1-bits only (the padding must be a prefix of EOS,
//               shorter than an octet)
// 256 x 256 entries = 256 KB, built at the first Huffman string in a few milliseconds; one
// lookup per input octet instead of a branch per bit. Not at load: between two proxies nothing
// is Huffman-coded (our encoder does not use it), and building it at start made V8 compile
// its optimising tier early, ~3.5 MB of the node binary paged in for an idle proxy.
const FLAG_FAIL = 1 << 26;
const FLAG_ACCEPT = 1 << 27;

let DECODE_TABLE: Uint32Array | undefined;

function buildDecodeTable(): Uint32Array {
  const table = new Uint32Array(256 * 256);
  // Internal node n has children child[2n] (bit 0) and child[2n+1] (bit 1); a child >= 0 is an
  // internal node, a child < 0 is the leaf of symbol (-child - 1).
  const child = new Int32Array(2 * 256).fill(0);
  const depth = new Uint8Array(256);
  const onesOnly = new Uint8Array(256);
  onesOnly[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const bit = (code >>> i) & 1;
      let next = child[2 * node + bit]!;
      if (next === 0) {
        next = nodes++;
        child[2 * node + bit] = next;
        depth[next] = depth[node]! + 1;
        onesOnly[next] = onesOnly[node]! & bit;
      }
      node = next;
    }
    child[2 * node + (code & 1)] = -sym - 1;
  }
  if (nodes !== 256) throw new Error('HPACK Huffman tree should have 256 internal nodes');

  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let entry = 0;
      let emitted = 0;
      for (let i = 7; i >= 0; i--) {
        const next = child[2 * node + ((byte >>> i) & 1)]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = -next - 1;
        if (sym === EOS) {
          entry = FLAG_FAIL;
          break;
        }
        entry |= sym << (8 + 8 * emitted);
        emitted++;
        node = 0;
      }
      if (entry !== FLAG_FAIL) {
        entry |= node | (emitted << 24);
        if (node === 0 || (onesOnly[node] === 1 && depth[node]! <= 7)) entry |= FLAG_ACCEPT;
      }
      table[(state << 8) | byte] = entry;
    }
  }
  return table;
}

/** Most octets a Huffman string of `encodedLength` octets can decode to (5-bit codes). */
export function huffmanDecodedBound(encodedLength: number): number {
  return ((encodedLength * 8) / 5) | 0;
}

/**
 * Decodes src[start, end) into dst from offset 0; dst must hold huffmanDecodedBound(end - start).
 * Returns the decoded length, or -1 when the input is not a valid HPACK Huffman string
 * (EOS inside, padding longer than 7 bits or not all ones).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  const table = (DECODE_TABLE ??= buildDecodeTable());
  let state = 0;
  let n = 0;
  let entry = FLAG_ACCEPT;
  for (let i = start; i < end; i++) {
    entry = table[(state << 8) | src[i]!]!;
    if ((entry & FLAG_FAIL) !== 0) return -1;
    const emitted = (entry >>> 24) & 3;
    if (emitted !== 0) {
      dst[n++] = (entry >>> 8) & 0xff;
      if (emitted === 2) dst[n++] = (entry >>> 16) & 0xff;
    }
    state = entry & 0xff;
  }
  return (entry & FLAG_ACCEPT) !== 0 ? n : -1;
}

// ---- Encoder ----

/** Octets the Huffman form of a latin1 string takes. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Writes the Huffman form of a latin1 string at dst[off]; returns the offset after it. */
export function huffmanEncode(s: string, dst: Uint8Array, off: number): number {
  // Whole codes are shifted into a 32-bit accumulator that holds fewer than 8 pending bits
  // between symbols; a code of up to 30 bits is fed in pieces so the accumulator never
  // overflows 32 bits.
  let acc = 0;
  let pending = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    const code = HUFFMAN_CODES[sym]!;
    let len = HUFFMAN_LENGTHS[sym]!;
    while (len > 0) {
      const take = len < 24 ? len : 24;
      len -= take;
      acc = (acc << take) | ((code >>> len) & ((1 << take) - 1));
      pending += take;
      while (pending >= 8) {
        pending -= 8;
        dst[off++] = (acc >>> pending) & 0xff;
      }
      acc &= (1 << pending) - 1;
    }
  }
  if (pending > 0) dst[off++] = ((acc << (8 - pending)) | (0xff >>> pending)) & 0xff;
  return off;
}
