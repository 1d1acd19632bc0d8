import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H2_PREFACE, MAX_METHOD_LENGTH, matchPreface, matchRequestLine, type Match } from './http.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The shortest prefix of `input` on which `match` stops saying need-more, and what it says there. */
function decision(match: (b: Buffer) => Match, input: Buffer): { at: number; says: Match } {
  for (let n = 0; n <= input.length; n++) {
    const says = match(input.subarray(0, n));
    if (says !== 'need-more') return { at: n, says };
  }
  return { at: -1, says: 'need-more' };
}

describe('HTTP/2 preface', () => {
  it('matches the 24-byte preface and needs more on each of its prefixes', () => {
    assert.equal(H2_PREFACE.length, 24);
    assert.deepEqual(decision(matchPreface, H2_PREFACE), { at: 24, says: 'yes' });
    assert.equal(matchPreface(Buffer.concat([H2_PREFACE, bytes('\0\0\0\x04\0\0\0\0\0')])), 'yes');
  });

  it('rejects on the first byte that differs', () => {
    assert.deepEqual(decision(matchPreface, bytes('PRI * HTTP/1.1\r\n')), { at: 12, says: 'no' });
    assert.deepEqual(decision(matchPreface, bytes('PRI * HTTP/2.0\r\n\r\nSX')), { at: 20, says: 'no' });
    assert.deepEqual(decision(matchPreface, bytes('GET')), { at: 1, says: 'no' });
  });
});

describe('HTTP/1 request line', () => {
  const valid = [
    'GET / HTTP/1.1\r\n',
    'POST /x?y=1 HTTP/1.0\r\n',
    'get / HTTP/1.1\r\n', // methods are case-sensitive tokens; lower case is a valid (unknown) method
    'M-SEARCH * HTTP/1.1\r\n',
    "!#$%&'*+-.^_`|~09azAZ /%7e~ HTTP/1.1\r\n", // every tchar class
    'OPTIONS * HTTP/1.1\r\n',
    'CONNECT web.default.svc:443 HTTP/1.1\r\n',
    'GET http://web/a?b=c#d HTTP/1.1\r\n',
    `${'X'.repeat(MAX_METHOD_LENGTH)} / HTTP/1.0\r\n`,
  ];
  for (const line of valid) {
    it(`accepts ${JSON.stringify(line)} exactly at its LF`, () => {
      assert.deepEqual(decision(matchRequestLine, bytes(line)), { at: line.length, says: 'yes' });
      assert.equal(matchRequestLine(bytes(`${line}Host: x\r\n\r\n`)), 'yes');
    });
  }

  // [input, the length at which it is rejected]: as early as the grammar allows.
  const invalid: Array<[string, number]> = [
    [' GET / HTTP/1.1\r\n', 1],
    ['\r\nGET / HTTP/1.1\r\n', 1],
    ['G(T / HTTP/1.1\r\n', 2],
    ['GET\t/ HTTP/1.1\r\n', 4],
    ['GET  / HTTP/1.1\r\n', 5],
    ['GET /\x00 HTTP/1.1\r\n', 6],
    ['GET /caf\xe9 HTTP/1.1\r\n', 9],
    ['GET /  HTTP/1.1', 7],
    ['GET / http/1.1\r\n', 7],
    ['GET / HTTP/2.0\r\n', 12],
    ['GET / HTTP/1.2\r\n', 14],
    ['GET / HTTP/1.10\r\n', 15],
    ['GET / HTTP/1.1\n', 15], // a bare LF: strict CRLF, as the spec's grammar says
    ['GET / HTTP/1.1\r\r', 16],
    ['GET /\r\n', 6], // HTTP/0.9 has no version
    ['EHLO mail.example.com\r\n', 22],
    [`${'X'.repeat(MAX_METHOD_LENGTH + 1)} / HTTP/1.1\r\n`, MAX_METHOD_LENGTH + 1],
  ];
  for (const [line, at] of invalid) {
    it(`rejects ${JSON.stringify(line)} at byte ${at}`, () => {
      assert.deepEqual(decision(matchRequestLine, bytes(line)), { at, says: 'no' });
    });
  }

  it('needs more for an empty prefix and for a long target still in progress', () => {
    assert.equal(matchRequestLine(Buffer.alloc(0)), 'need-more');
    assert.equal(matchRequestLine(bytes(`GET /${'a'.repeat(100_000)}`)), 'need-more');
  });
});
