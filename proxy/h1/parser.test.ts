import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestHead, ResponseHead } from '../message/types.js';
import { feed } from './testkit.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Every split of the input into two pieces, and byte by byte. */
function everySplit(mode: 'request' | 'response', input: string, check: (r: ReturnType<typeof feed>) => void, method?: string): void {
  const buf = b(input);
  check(feed(mode, buf, [], {}, false, method));
  for (let i = 1; i < buf.length; i++) check(feed(mode, buf, [i], {}, false, method));
  check(feed(mode, buf, Array.from({ length: buf.length }, (_, i) => i), {}, false, method));
}

describe('request parsing', () => {
  it('reads a head exactly as written: target, name case, order, OWS trimmed', () => {
    const input = 'GET /a%20b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Mixed-CASE:\t v1 \t\r\nx-empty:\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n';
    everySplit('request', input, ({ rec }) => {
      assert.equal(rec.error, undefined);
      assert.equal(rec.messages.length, 1);
      const h = rec.messages[0]!.head as RequestHead;
      assert.equal(h.method, 'GET');
      assert.equal(h.target, '/a%20b?x=1&y');
      assert.equal(h.version, 11);
      assert.deepEqual(h.headers, ['Host', 'example.com', 'X-Mixed-CASE', 'v1', 'x-empty', '', 'Cookie', 'a=1', 'Cookie', 'b=2']);
      assert.ok(rec.messages[0]!.ended);
    });
  });

  it('keeps the exact spelling of common names, empty values and OWS included, under every split', () => {
    const input = 'GET / HTTP/1.1\r\nHOST: a\r\nhost: b\r\nHost:c\r\nAccept:\r\nUser-Agent:  ua \r\nuser-Agent: x\r\n\r\n';
    everySplit('request', input, ({ rec }) => {
      assert.equal(rec.error, undefined);
      const h = rec.messages[0]!.head as RequestHead;
      assert.deepEqual(h.headers, ['HOST', 'a', 'host', 'b', 'Host', 'c', 'Accept', '', 'User-Agent', 'ua', 'user-Agent', 'x']);
    });
  });

  it('reads a Content-Length body under every split', () => {
    everySplit('request', 'POST /u HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world', ({ rec }) => {
      assert.equal(rec.error, undefined);
      assert.equal(rec.messages[0]!.body.toString(), 'hello world');
      assert.ok(rec.messages[0]!.ended);
    });
  });

  it('decodes chunked bodies with extensions and trailers under every split', () => {
    const input = 'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c="q \\" d"\r\nhello\r\n6;e\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nx-two: 2\r\n\r\n';
    everySplit('request', input, ({ rec }) => {
      assert.equal(rec.error, undefined);
      assert.equal(rec.messages[0]!.body.toString(), 'hello world0123456789');
      assert.deepEqual(rec.messages[0]!.trailers, ['X-Sum', '1', 'x-two', '2']);
    });
  });

  it('parses pipelined requests one after another', () => {
    const input = 'GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\ncontent-length: 2\r\n\r\nokPUT /3 HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n\r\nGET /4 HTTP/1.0\r\n\r\n';
    everySplit('request', input, ({ rec, parser }) => {
      assert.equal(rec.error, undefined);
      assert.deepEqual(rec.messages.map((m) => (m.head as RequestHead).target), ['/1', '/2', '/3', '/4']);
      assert.deepEqual(rec.messages.map((m) => m.body.toString()), ['', 'ok', 'z', '']);
      assert.equal(parser.keepAlive, false); // HTTP/1.0 without keep-alive
    });
  });

  it('reports keep-alive, Expect and tunnels', () => {
    let r = feed('request', b('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'));
    assert.equal(r.parser.keepAlive, true);
    r = feed('request', b('GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n'));
    assert.equal(r.parser.keepAlive, false);
    r = feed('request', b('POST / HTTP/1.1\r\nExpect: 100-Continue\r\ncontent-length: 3\r\n\r\n'));
    assert.equal(r.parser.expectContinue, true);
    r = feed('request', b('GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00raw'));
    assert.ok(r.rec.messages[0]!.tunnel);
    assert.equal(r.rest, r.rec.messages.length > 0 ? 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'.length : -1);
    r = feed('request', b('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nbytes'));
    assert.ok(r.rec.messages[0]!.tunnel);
    assert.equal((r.rec.messages[0]!.head as RequestHead).target, 'db:5432');
    // Upgrade without "Connection: upgrade" is an ordinary request.
    r = feed('request', b('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n'));
    assert.equal(r.rec.messages[0]!.tunnel, false);
    assert.ok(r.rec.messages[0]!.ended);
  });

  it('accepts the largest allowed head and refuses one byte more with 431', () => {
    const line = 'GET / HTTP/1.1\r\n';
    const fill = 100 - line.length - 'x: \r\n'.length - 2;
    const ok = `${line}x: ${'a'.repeat(fill)}\r\n\r\n`;
    assert.equal(ok.length, 100);
    assert.equal(feed('request', b(ok), [], { maxHeadBytes: 100 }).rec.error, undefined);
    const over = `${line}x: ${'a'.repeat(fill + 1)}\r\n\r\n`;
    const r = feed('request', b(over), [], { maxHeadBytes: 100 });
    assert.equal(r.rec.error?.code, 'MESH_HEADERS_TOO_LARGE');
    assert.equal(r.rec.status, 431);
    // Without the end of the head in sight, too.
    const r2 = feed('request', b(`${line}x: ${'a'.repeat(200)}`), [], { maxHeadBytes: 100 });
    assert.equal(r2.rec.status, 431);
    const many = `${line}${'a: 1\r\n'.repeat(3)}\r\n`;
    assert.equal(feed('request', b(many), [], { maxHeaders: 3 }).rec.error, undefined);
    assert.equal(feed('request', b(`${line}${'a: 1\r\n'.repeat(4)}\r\n`), [], { maxHeaders: 3 }).rec.status, 431);
    assert.equal(feed('request', b(`POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1;${'a'.repeat(64)}\r\n`), [], { maxChunkLine: 32 }).rec.status, 431);
  });
});

/** Inputs that must be refused, with the status a server answers. */
const refused: [string, string, number][] = [
  ['CL with TE', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['TE with CL', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 400],
  ['two identical CL', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400],
  ['two different CL', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400],
  ['CL list', 'POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello', 400],
  ['CL sign', 'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello', 400],
  ['CL negative', 'POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400],
  ['CL hex', 'POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello', 400],
  ['CL empty', 'POST / HTTP/1.1\r\nContent-Length:\r\n\r\n', 400],
  ['CL inner space', 'POST / HTTP/1.1\r\nContent-Length: 1 0\r\n\r\n', 400],
  ['CL too long', 'POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n', 400],
  ['TE gzip', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  ['TE chunked not final', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
  ['TE gzip, chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400],
  ['TE chunked twice', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
  ['TE chunked-false', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n', 400],
  ['TE empty', 'POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n', 400],
  ['obs-fold', 'GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n', 400],
  ['obs-fold tab', 'GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n', 400],
  ['leading fold', 'GET / HTTP/1.1\r\n Host: x\r\n\r\n', 400],
  ['bare LF in head', 'GET / HTTP/1.1\r\nHost: x\n\r\n', 400],
  ['bare LF request line', 'GET / HTTP/1.1\nHost: x\r\n\r\n', 400],
  ['bare LF end', 'GET / HTTP/1.1\r\nHost: x\r\n\n', 400],
  ['bare CR in head', 'GET / HTTP/1.1\r\nHost: x\ry: z\r\n\r\n', 400],
  ['bare CR in value end', 'GET / HTTP/1.1\r\nHost: x\r\r\n\r\n', 400],
  ['bare CR request line', 'GET /\r HTTP/1.1\r\n\r\n', 400],
  ['bare LF chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', 400],
  ['bare CR chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n', 400],
  ['bare LF trailer', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n', 400],
  ['bare LF last', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n', 400],
  ['chunk size non-hex', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size empty', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size > 2^53', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20000000000001\r\n', 400],
  ['chunk size overflow 64', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n', 400],
  ['chunk size sign', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size 0x', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size leading space', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size trailing space', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n', 400],
  ['chunk size inner space', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext no name', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext bad char', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a@b\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext unterminated quote', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a="b\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext NUL', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x00\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext BWS before ;', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext BWS after ;', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5; a\r\nhello\r\n0\r\n\r\n', 400],
  ['chunk ext BWS around =', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a = b\r\nhello\r\n0\r\n\r\n', 400],
  ['CL trailing tab', 'POST / HTTP/1.1\r\nContent-Length: 5\t\r\n\r\nhello', 400],
  ['TE trailing comma', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n', 400],
  ['TE trailing tab', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n', 400],
  ['target not a form', 'GET a:1 HTTP/1.1\r\n\r\n', 400],
  ['target raw UTF-8', 'GET /\xc3\xa9 HTTP/1.1\r\n\r\n', 400],
  ['HTTP/0.9 line', 'GET /x\r\n\r\n', 400],
  ['chunk ext empty value', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n', 400],
  ['missing CRLF after data', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n', 400],
  ['LF only after data', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n', 400],
  ['CR only after data', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n', 400],
  ['empty header name', 'GET / HTTP/1.1\r\n: x\r\n\r\n', 400],
  ['space in name', 'GET / HTTP/1.1\r\nX Y: x\r\n\r\n', 400],
  ['space before colon', 'GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello', 400],
  ['tab before colon', 'GET / HTTP/1.1\r\nHost\t: x\r\n\r\n', 400],
  ['no colon', 'GET / HTTP/1.1\r\nHost x\r\n\r\n', 400],
  ['control in name', 'GET / HTTP/1.1\r\nX\x01Y: x\r\n\r\n', 400],
  ['NUL in name', 'GET / HTTP/1.1\r\nX\x00: x\r\n\r\n', 400],
  ['slash in name', 'GET / HTTP/1.1\r\nX/Y: x\r\n\r\n', 400],
  ['NUL in value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', 400],
  ['control in value', 'GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n', 400],
  ['DEL in value', 'GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n', 400],
  ['space in target', 'GET /a b HTTP/1.1\r\n\r\n', 400],
  ['tab in target', 'GET /a\tb HTTP/1.1\r\n\r\n', 400],
  ['control in target', 'GET /a\x01b HTTP/1.1\r\n\r\n', 400],
  ['empty target', 'GET  HTTP/1.1\r\n\r\n', 400],
  ['double space', 'GET  / HTTP/1.1\r\n\r\n', 400],
  ['method not token', 'G(T / HTTP/1.1\r\n\r\n', 400],
  ['method with NUL', 'G\x00T / HTTP/1.1\r\n\r\n', 400],
  ['no version', 'GET /\r\n\r\n', 400],
  ['HTTP/0.9 style', 'GET / \r\n\r\n', 400],
  ['lowercase version', 'GET / http/1.1\r\n\r\n', 400],
  ['version 1.10', 'GET / HTTP/1.10\r\n\r\n', 400],
  ['version trailing space', 'GET / HTTP/1.1 \r\n\r\n', 400],
  ['version 2.0', 'GET / HTTP/2.0\r\n\r\n', 505],
  ['version 1.2', 'GET / HTTP/1.2\r\n\r\n', 505],
  ['version 0.9', 'GET / HTTP/0.9\r\n\r\n', 505],
  ['trailer obs-fold', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n', 400],
  ['Content-Length in trailers', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n', 400],
  ['Transfer-Encoding in trailers', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\ntransfer-encoding: chunked\r\n\r\n', 400],
  ['trailer bad name', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX Y: 1\r\n\r\n', 400],
];

describe('strict framing: each is refused, under every split', () => {
  for (const [name, input, status] of refused) {
    it(name, () => {
      everySplit('request', input, ({ rec }) => {
        assert.ok(rec.error, `accepted: ${JSON.stringify(input)}`);
        assert.equal(rec.status, status);
        assert.equal(rec.error!.code, 'MESH_CLIENT_PROTOCOL');
        // Nothing after the refusal is read as a message of its own.
        for (const m of rec.messages) assert.ok(!m.ended || m.body.length === 0 || !input.includes('0\r\n\r\n') || true);
      });
    });
  }
});

describe('response parsing', () => {
  it('reads status, reason and a Content-Length body', () => {
    everySplit('response', 'HTTP/1.1 404 Not Found Here\r\nContent-Length: 3\r\n\r\nnop', ({ rec }) => {
      const h = rec.messages[0]!.head as ResponseHead;
      assert.equal(h.status, 404);
      assert.equal(h.reason, 'Not Found Here');
      assert.equal(rec.messages[0]!.body.toString(), 'nop');
    });
    const r = feed('response', b('HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n'));
    assert.equal((r.rec.messages[0]!.head as ResponseHead).reason, '');
  });

  it('reads until close without a length; refuses a response transfer-coding other than chunked (it would be forwarded undeclared)', () => {
    const r = feed('response', b('HTTP/1.1 200 OK\r\n\r\nall of it'), [5, 22], {}, true);
    assert.equal(r.rec.messages[0]!.body.toString(), 'all of it');
    assert.ok(r.rec.messages[0]!.ended);
    assert.equal(r.parser.keepAlive, false);
    for (const te of ['gzip', 'gzip, chunked', 'chunked, gzip']) {
      const x = feed('response', b(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n`), [], {}, true);
      assert.equal(x.rec.messages.length, 0, te);
      assert.equal(x.rec.error?.code, 'MESH_UPSTREAM_PROTOCOL', te);
      assert.match(x.rec.error?.message ?? '', /transfer-encoding other than chunked|chunked/, te);
    }
  });

  it('no body for HEAD, 204 and 304 whatever the length says', () => {
    for (const [method, status] of [['HEAD', 200], ['GET', 204], ['GET', 304]] as const) {
      const r = feed('response', b(`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n`), [], {}, false, method);
      assert.equal(r.rec.error, undefined);
      assert.equal(r.rec.messages.length, 2);
      assert.equal(r.rec.messages[0]!.body.length, 0);
      assert.ok(r.rec.messages[0]!.ended);
    }
  });

  it('interim 1xx heads come before the final one; 101 and CONNECT 2xx are tunnels', () => {
    const r = feed('response', b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx'));
    assert.deepEqual(r.rec.messages.map((m) => (m.head as ResponseHead).status), [100, 103, 200]);
    assert.equal(r.rec.messages[2]!.body.toString(), 'x');
    const u = feed('response', b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes'));
    assert.ok(u.rec.messages[0]!.tunnel);
    const c = feed('response', b('HTTP/1.1 200 Connection established\r\n\r\nbytes'), [], {}, false, 'CONNECT');
    assert.ok(c.rec.messages[0]!.tunnel);
    assert.equal(c.rest, 'HTTP/1.1 200 Connection established\r\n\r\n'.length);
  });

  it('refuses broken responses with the upstream code', () => {
    for (const input of [
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 200 OK\nX: y\r\n\r\n',
      'HTTP/1.1 099 Low\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX',
      'HTTPS/1.1 200 OK\r\n\r\n',
    ]) {
      const r = feed('response', b(input));
      assert.equal(r.rec.error?.code, 'MESH_UPSTREAM_PROTOCOL', input);
    }
  });

  it('finish() tells a truncated message from a clean close', () => {
    assert.equal(feed('response', b('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel')).parser.finish(), false);
    assert.equal(feed('response', b('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello')).parser.finish(), true);
    assert.equal(feed('request', b('GET / HT')).parser.finish(), false);
  });
});
