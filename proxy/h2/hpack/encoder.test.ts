import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HpackDecoder } from './decoder.js';
import { encodedBlock, HpackEncoder } from './encoder.js';

const hex = (s: string): string => s.replace(/\s+/g, '');

function roundTrip(enc: HpackEncoder, dec: HpackDecoder, headers: string[]): Buffer {
  const block = enc.encode(headers);
  const out: string[] = [];
  dec.decode(block, out);
  assert.deepEqual(out, headers);
  return block;
}

const c3 = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
  [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
];

test('C.3 requests encode byte for byte as in the RFC (no Huffman)', () => {
  const enc = new HpackEncoder();
  const expected = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  for (let i = 0; i < 3; i++) assert.equal(enc.encode(c3[i]!).toString('hex'), hex(expected[i]!));
});

test('C.4 requests encode byte for byte as in the RFC (Huffman)', () => {
  const enc = new HpackEncoder({ huffman: true });
  const expected = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  for (let i = 0; i < 3; i++) assert.equal(enc.encode(c3[i]!).toString('hex'), hex(expected[i]!));
});

test('round trip of values with obs-text, controls and empty strings', () => {
  for (const huffman of [false, true]) {
    const enc = new HpackEncoder({ huffman });
    const dec = new HpackDecoder();
    let all = '';
    for (let c = 0; c < 256; c++) all += String.fromCharCode(c);
    const headers = [':status', '200', 'x-obs', 'caf\xe9 \xff\x80\t', 'x-all', all, 'x-empty', '', '', 'empty-name'];
    roundTrip(enc, dec, headers);
    const again = roundTrip(enc, dec, headers);
    // All indexed the second time, except x-all whose entry (290 octets) fits and is indexed too.
    assert.equal(again.length, 5);
  }
});

test('credentials are never indexed; short cookies too, long ones are', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  const headers = ['authorization', 'Bearer abc', 'proxy-authorization', 'Basic eA==', 'cookie', 'sid=1', 'cookie', 'session=0123456789abcdef'];
  const block = roundTrip(enc, dec, headers);
  // authorization: never indexed (0001), static name 23 => 0x1f 0x08
  assert.equal(block.subarray(0, 2).toString('hex'), '1f08');
  assert.equal(dec.dynamicTableLength, 1);
  assert.deepEqual(dec.dynamicEntry(1), ['cookie', 'session=0123456789abcdef']);
  // A second time only the long cookie is an index.
  const again = roundTrip(enc, dec, headers);
  assert.equal(again[again.length - 1], 0x80 | 62);
});

test('volatile values are not indexed: lengths, dates, ids, paths with a query', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  roundTrip(enc, dec, [':path', '/search?q=1', 'content-length', '12', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT', 'x-request-id', 'f00']);
  assert.equal(dec.dynamicTableLength, 0);
  roundTrip(enc, dec, [':path', '/api.Greeter/SayHello', 'user-agent', 'grpc-node/1.0']);
  assert.equal(dec.dynamicTableLength, 2);
});

test('an entry over 3/4 of the table is sent without indexing', () => {
  const enc = new HpackEncoder({ maxTableSize: 256 });
  const dec = new HpackDecoder({ maxTableSize: 256 });
  roundTrip(enc, dec, ['x-big', 'v'.repeat(170)]);
  assert.equal(dec.dynamicTableLength, 0);
});

test('the peer lowering and raising its table size: smallest then final update', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  roundTrip(enc, dec, c3[2]!);
  enc.setMaxTableSize(0);
  enc.setMaxTableSize(4096);
  const block = roundTrip(enc, dec, c3[2]!);
  assert.equal(block.subarray(0, 4).toString('hex'), '203fe11f');
  // The table was flushed, so custom-key went literal again and was re-added.
  assert.equal(dec.dynamicTableLength, 2);
  assert.equal(dec.dynamicTableLimit, 4096);
});

test('a size update is sent once, and not at all when nothing changes', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  enc.setMaxTableSize(8192); // above our own cap of 4096: we stay at 4096
  assert.equal(enc.encode([':method', 'GET']).toString('hex'), '82');
  enc.setMaxTableSize(100);
  assert.equal(roundTrip(enc, dec, [':method', 'GET']).toString('hex'), '3f4582');
  assert.equal(roundTrip(enc, dec, [':method', 'GET']).toString('hex'), '82');
  assert.equal(dec.dynamicTableLimit, 100);
});

test('a cap below 4096 is announced in the first block', () => {
  const enc = new HpackEncoder({ maxTableSize: 0 });
  const dec = new HpackDecoder();
  assert.equal(roundTrip(enc, dec, c3[0]!).subarray(0, 1).toString('hex'), '20');
  roundTrip(enc, dec, c3[0]!);
  assert.equal(dec.dynamicTableLength, 0);
});

test('eviction stays in sync over many blocks with a small table', () => {
  const enc = new HpackEncoder({ maxTableSize: 200 });
  const dec = new HpackDecoder({ maxTableSize: 200 });
  for (let i = 0; i < 500; i++) {
    const headers = [':method', 'POST', ':path', `/p${i % 7}`, 'x-a', `v${i % 5}`, `x-n${i % 3}`, 'same', 'x-long', 'l'.repeat(i % 60)];
    roundTrip(enc, dec, headers);
    assert.ok(dec.dynamicTableSize <= 200);
  }
});

test('a block larger than the scratch buffer', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  const headers: string[] = [];
  for (let i = 0; i < 40; i++) headers.push(`x-h${i}`, String.fromCharCode(65 + (i % 26)).repeat(500 + i));
  roundTrip(enc, dec, headers);
});

test('the dynamic tables start empty and grow as they fill, entries and indices unchanged across each growth', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  // Small entries (so up to ~90 fit in 4096 octets): the rings grow 8 → 16 → 32 → 64 → 128 and
  // then evict; each block repeats every field so far that is still in the table, as indices.
  const sent: string[] = [];
  for (let i = 0; i < 300; i++) {
    sent.push(`x-n${i % 150}`, `v${i}`);
    const block = sent.slice(-2 * Math.min(sent.length / 2, 40));
    const out: string[] = [];
    dec.decode(enc.encode(block), out);
    assert.deepEqual(out, block, `block ${i}`);
  }
  // The newest entry is index 62; its value is the last one sent, and the table stays within its size.
  assert.deepEqual(dec.dynamicEntry(1), ['x-n149', 'v299']);
  assert.ok(dec.dynamicTableSize <= 4096 && dec.dynamicTableLength > 64, `${dec.dynamicTableLength} entries, ${dec.dynamicTableSize} octets`);
  // Repeats after all the growth are still found in the encoder's table: an indexed field is one octet.
  assert.equal(enc.encode(['x-n149', 'v299']).length, 1);
});

test('encodeBlock writes the same block as encode, into the shared buffer', () => {
  const a = new HpackEncoder();
  const b = new HpackEncoder();
  const lists = [
    [':status', '200', 'content-type', 'text/plain', 'server', 'nginx'],
    [':status', '200', 'content-type', 'text/plain', 'server', 'nginx'],
    [':status', '404', 'x-long', 'v'.repeat(9000), 'cookie', 'a=1'],
  ];
  for (const list of lists) {
    const whole = a.encode(list);
    const n = b.encodeBlock(list);
    assert.deepEqual(encodedBlock().subarray(0, n), whole);
  }
});
