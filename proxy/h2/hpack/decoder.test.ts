import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HpackDecoder, HpackError } from './decoder.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: string): string[] {
  const out: string[] = [];
  d.decode(hex(block), out);
  return out;
}

function table(d: HpackDecoder): Array<[string, string]> {
  const t: Array<[string, string]> = [];
  for (let i = 1; i <= d.dynamicTableLength; i++) t.push(d.dynamicEntry(i)!);
  return t;
}

function rejects(d: HpackDecoder, block: string | Buffer, code = 'MESH_HPACK_DECODE'): void {
  assert.throws(
    () => d.decode(typeof block === 'string' ? hex(block) : block, []),
    (e: unknown) => e instanceof HpackError && e.code === code,
  );
}

test('C.2.1 literal with indexing', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), ['custom-key', 'custom-header']);
  assert.deepEqual(table(d), [['custom-key', 'custom-header']]);
  assert.equal(d.dynamicTableSize, 55);
});

test('C.2.2 literal without indexing', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, '040c 2f73 616d 706c 652f 7061 7468'), [':path', '/sample/path']);
  assert.equal(d.dynamicTableLength, 0);
});

test('C.2.3 literal never indexed', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, '1008 7061 7373 776f 7264 0673 6563 7265 74'), ['password', 'secret']);
  assert.equal(d.dynamicTableLength, 0);
});

test('C.2.4 indexed field', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, '82'), [':method', 'GET']);
  assert.equal(d.dynamicTableLength, 0);
});

// C.3 and C.4 are the same three requests, plain and Huffman-coded.
const requests = [
  {
    plain: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    huffman: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    headers: [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
    table: [[':authority', 'www.example.com']],
    size: 57,
  },
  {
    plain: '8286 84be 5808 6e6f 2d63 6163 6865',
    huffman: '8286 84be 5886 a8eb 1064 9cbf',
    headers: [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
    table: [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    size: 110,
  },
  {
    plain: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    huffman: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    headers: [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
    table: [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    size: 164,
  },
];

for (const form of ['plain', 'huffman'] as const) {
  test(`${form === 'plain' ? 'C.3' : 'C.4'} requests ${form === 'plain' ? 'without' : 'with'} Huffman`, () => {
    const d = new HpackDecoder();
    for (const r of requests) {
      assert.deepEqual(decode(d, r[form]), r.headers);
      assert.deepEqual(table(d), r.table);
      assert.equal(d.dynamicTableSize, r.size);
    }
  });
}

// C.5 and C.6: three responses with a 256-octet table, so entries are evicted.
const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const responses = [
  {
    plain: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a
      3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    huffman: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e
      919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    headers: [':status', '302', 'cache-control', 'private', 'date', date1, 'location', 'https://www.example.com'],
    table: [['location', 'https://www.example.com'], ['date', date1], ['cache-control', 'private'], [':status', '302']],
    size: 222,
  },
  {
    plain: '4803 3330 37c1 c0bf',
    huffman: '4883 640e ffc1 c0bf',
    headers: [':status', '307', 'cache-control', 'private', 'date', date1, 'location', 'https://www.example.com'],
    table: [[':status', '307'], ['location', 'https://www.example.com'], ['date', date1], ['cache-control', 'private']],
    size: 222,
  },
  {
    plain: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04
      677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49
      553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
    huffman: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7
      821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed
      4ee5 b106 3d50 07`,
    headers: [':status', '200', 'cache-control', 'private', 'date', date2, 'location', 'https://www.example.com', 'content-encoding', 'gzip', 'set-cookie', cookie],
    table: [['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date2]],
    size: 215,
  },
];

for (const form of ['plain', 'huffman'] as const) {
  test(`${form === 'plain' ? 'C.5' : 'C.6'} responses ${form === 'plain' ? 'without' : 'with'} Huffman, evicting`, () => {
    const d = new HpackDecoder({ maxTableSize: 256 });
    for (const r of responses) {
      assert.deepEqual(decode(d, r[form]), r.headers);
      assert.deepEqual(table(d), r.table);
      assert.equal(d.dynamicTableSize, r.size);
    }
  });
}

test('size update to 0 empties the table; back up keeps it empty but usable', () => {
  const d = new HpackDecoder();
  decode(d, requests[0]!.plain);
  assert.equal(d.dynamicTableLength, 1);
  assert.deepEqual(decode(d, '20'), []);
  assert.equal(d.dynamicTableLength, 0);
  assert.equal(d.dynamicTableSize, 0);
  // Two updates at the start of a block (the smallest, then the final one) are fine.
  assert.deepEqual(decode(d, '20 3fe1 1f 82'), [':method', 'GET']);
  assert.equal(d.dynamicTableLimit, 4096);
  decode(d, requests[0]!.plain);
  assert.equal(d.dynamicTableLength, 1);
});

test('size update below the current size evicts the oldest entries', () => {
  const d = new HpackDecoder();
  for (const r of requests) decode(d, r.plain);
  assert.equal(d.dynamicTableSize, 164);
  decode(d, '3f 5f'); // 31 + 95 = 126: keeps custom-key (54) and cache-control (53)
  assert.deepEqual(table(d), requests[2]!.table.slice(0, 2));
  assert.equal(d.dynamicTableSize, 107);
  // Index 64 was :authority; now beyond the table.
  rejects(d, 'c0');
});

test('an entry larger than the table empties it and is not added', () => {
  const d = new HpackDecoder({ maxTableSize: 64 });
  decode(d, '4001 61 01 62'); // a: b (34)
  assert.equal(d.dynamicTableLength, 1);
  const big = 'x'.repeat(40);
  const out: string[] = [];
  d.decode(Buffer.concat([hex('4001 61 28'), Buffer.from(big, 'latin1')]), out);
  assert.deepEqual(out, ['a', big]);
  assert.equal(d.dynamicTableLength, 0);
  assert.equal(d.dynamicTableSize, 0);
});

test('eviction while inserting an entry whose name refers to the evicted entry', () => {
  const d = new HpackDecoder({ maxTableSize: 40 });
  decode(d, '4001 61 01 62'); // a: b (34)
  // Name from index 62 (a: b), value c: the new entry evicts the one its name came from.
  assert.deepEqual(decode(d, '7e 01 63'), ['a', 'c']);
  assert.deepEqual(table(d), [['a', 'c']]);
  assert.equal(d.dynamicTableSize, 34);
});

test('entries are evicted oldest first', () => {
  const d = new HpackDecoder({ maxTableSize: 110 });
  decode(d, '4001 61 01 31'); // a: 1 (34)
  decode(d, '4001 62 01 32'); // b: 2
  decode(d, '4001 63 01 33'); // c: 3 (102 in all)
  decode(d, '4001 64 01 34'); // d: 4 evicts a
  assert.deepEqual(table(d), [['d', '4'], ['c', '3'], ['b', '2']]);
  assert.deepEqual(decode(d, 'c0 bf be'), ['b', '2', 'c', '3', 'd', '4']);
  rejects(d, 'c1');
});

test('size update above our maximum is rejected', () => {
  rejects(new HpackDecoder(), '3fe2 1f'); // 4097
  rejects(new HpackDecoder({ maxTableSize: 0 }), '21');
  new HpackDecoder({ maxTableSize: 0 }).decode(hex('20 82'), []);
});

test('size update after a field is rejected', () => {
  rejects(new HpackDecoder(), '82 20');
});

test('index 0 is rejected', () => {
  rejects(new HpackDecoder(), '80');
});

test('index beyond the static and dynamic tables is rejected', () => {
  rejects(new HpackDecoder(), 'be'); // 62, table empty
  rejects(new HpackDecoder(), 'ff 00'); // 127
  rejects(new HpackDecoder(), '7e 01 61'); // literal name from 62
  rejects(new HpackDecoder(), '0f 2f 01 61'); // literal name index 62 without indexing
});

test('truncated integers and strings are rejected', () => {
  rejects(new HpackDecoder(), 'ff'); // indexed, continuation missing
  rejects(new HpackDecoder(), 'ff 80'); // continuation bit set on the last byte
  rejects(new HpackDecoder(), '40'); // literal, name length missing
  rejects(new HpackDecoder(), '40 05 6162'); // name shorter than its length
  rejects(new HpackDecoder(), '40 01 61'); // value missing
  rejects(new HpackDecoder(), '40 01 61 03 6162'); // value shorter than its length
  rejects(new HpackDecoder(), '40 81'); // Huffman name cut short
  rejects(new HpackDecoder(), '3f'); // size update, continuation missing
});

test('integer overflow is rejected, not wrapped', () => {
  rejects(new HpackDecoder(), 'ff ffffffffffffffffff 7f');
  rejects(new HpackDecoder(), 'ff ffffffff 0f'); // 127 + 2^32-ish
  rejects(new HpackDecoder(), '40 7f ffffffff 07'); // string length 2^31+
  // Long but small-valued encodings (redundant zero continuation bytes) are legal.
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, '3f 80 80 00'), []);
  assert.equal(d.dynamicTableLimit, 31);
});

test('bad Huffman strings are rejected', () => {
  rejects(new HpackDecoder(), '40 81 ff 01 61'); // name: 8 bits of padding
  rejects(new HpackDecoder(), '40 01 61 81 18'); // value: 'a' then 000 padding
  rejects(new HpackDecoder(), '40 01 61 84 ffffffff'); // value: EOS
});

test('too large a header list fails after keeping the table in sync', () => {
  const d = new HpackDecoder({ maxHeaderListSize: 100 });
  const block = Buffer.concat([
    hex('4001 61 28'), Buffer.from('x'.repeat(40)), // a (73)
    hex('4001 62 28'), Buffer.from('y'.repeat(40)), // b (73): over
    hex('82'),
  ]);
  rejects(d, block, 'MESH_HEADERS_TOO_LARGE');
  assert.deepEqual(table(d).map((e) => e[0]), ['b', 'a']);
  assert.deepEqual(decode(d, 'be'), ['b', 'y'.repeat(40)]);
});

test('valuesOk: a NUL, CR or LF in a value is noticed when read, and again each time its entry is indexed', () => {
  const d = new HpackDecoder();
  const literal = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
  const run = (block: Buffer): boolean => {
    d.decode(block, []);
    return d.valuesOk;
  };
  assert.equal(run(literal('x-a', 'fine')), true);
  assert.equal(run(literal('x-b', 'split\r\ninjected: 1')), false, 'a CR LF in a literal value');
  assert.equal(run(Buffer.from([0x80 | 62])), false, 'the same value again, as an index of the dynamic table');
  assert.equal(run(Buffer.from([0x80 | 63])), true, 'the clean entry indexed');
  assert.equal(run(Buffer.from([0x82])), true, 'a static entry');
  assert.equal(run(literal('x-c', `${'a'.repeat(40)}\0`)), false, 'a NUL at the end of a long value');
});
