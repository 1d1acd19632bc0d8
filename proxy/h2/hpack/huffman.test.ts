import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanDecodedBound,
  huffmanEncode,
  huffmanEncodedLength,
} from './huffman.js';

function decode(hex: string): string | null {
  const src = Buffer.from(hex.replace(/ /g, ''), 'hex');
  const dst = Buffer.alloc(huffmanDecodedBound(src.length));
  const n = huffmanDecode(src, 0, src.length, dst);
  return n < 0 ? null : dst.toString('latin1', 0, n);
}

function encode(s: string): string {
  const dst = Buffer.alloc(huffmanEncodedLength(s));
  assert.equal(huffmanEncode(s, dst, 0), dst.length);
  return dst.toString('hex');
}

test('regenerated codes match the RFC 7541 Appendix B list', () => {
  // [symbol, code as hex in the RFC, length]
  const rfc: Array<[number, number, number]> = [
    [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [9, 0xffffea, 24], [10, 0x3ffffffc, 30], [22, 0x3ffffffe, 30],
    [32, 0x14, 6], [33, 0x3f8, 10], [48, 0x0, 5], [58, 0x5c, 7], [60, 0x7ffc, 15], [88, 0xfc, 8],
    [92, 0x7fff0, 19], [97, 0x3, 5], [122, 0x7b, 7], [126, 0x1ffd, 13], [127, 0xffffffc, 28],
    [128, 0xfffe6, 20], [153, 0x1fffdc, 21], [195, 0x7fff1, 19], [199, 0x1ffffec, 25],
    [203, 0x7ffffde, 27], [220, 0xffffffd, 28], [249, 0xffffffe, 28], [254, 0x7fffff0, 27],
    [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of rfc) {
    assert.equal(HUFFMAN_LENGTHS[sym], len, `length of ${sym}`);
    assert.equal(HUFFMAN_CODES[sym], code, `code of ${sym}`);
  }
});

test('RFC 7541 C.4 and C.6 strings', () => {
  const cases: Array<[string, string]> = [
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'],
    ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ['302', '6402'],
    ['private', 'aec3 771a 4b'],
    ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
    ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ];
  for (const [text, hex] of cases) {
    assert.equal(decode(hex), text);
    assert.equal(encode(text), hex.replace(/ /g, ''));
  }
});

test('every octet round-trips, alone and in a run', () => {
  let all = '';
  for (let c = 0; c < 256; c++) {
    const s = String.fromCharCode(c);
    all += s;
    assert.equal(decode(encode(s)), s);
  }
  assert.equal(decode(encode(all)), all);
  assert.equal(decode(encode(all + all.split('').reverse().join(''))), all + all.split('').reverse().join(''));
});

test('empty input decodes to the empty string', () => {
  assert.equal(decode(''), '');
});

test('padding: up to 7 one-bits is accepted', () => {
  assert.equal(decode('07'), '0'); // '0' = 00000, then 111
  assert.equal(decode('1f'), 'a'); // 'a' = 00011, then 111
});

test('padding longer than 7 bits is rejected', () => {
  // '0' then 3 + 8 one-bits.
  assert.equal(decode('07ff'), null);
  assert.equal(decode('ff'), null);
});

test('padding that is not all ones is rejected', () => {
  assert.equal(decode('18'), null); // 00011 000: 'a', then zeros
  assert.equal(decode('1e'), null); // 00011 110: 'a', then a zero
});

test('EOS inside the string is rejected', () => {
  // EOS is 30 ones; 4 octets of ones contain it.
  assert.equal(decode('ffffffff'), null);
  assert.equal(decode('1fffffffff'), null);
});
