// HTTP/1 carried over h2 between proxies and restored on the far side, on the
// seam's heads (ported from the former node:http2 module's tests, orig-proto.test.ts).
// The crossing is simulated with our h2 codec's own halves: the list the
// client role encodes for a head (requestFields; ':status' + appendFields for
// a response) and the head the other side parses from it (parseRequest,
// parseResponse), which also checks the h2 message is well-formed. HPACK in
// between is lossless; one block checks the simulation against a real
// connection of our client and server roles.
import assert from 'node:assert/strict';
import { STATUS_CODES } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parseResponse, requestFields, type H2ClientConnection } from '../h2/client.js';
import { parseRequest } from '../h2/server.js';
import { appendFields, type H2Stream } from '../h2/stream.js';
import { ourClient, ourServer, Recorder, type OurServer } from '../h2/testkit.js';
import { carriesH1, h1RequestOf, h1ResponseOf, h2RequestOf, h2ResponseOf, h2TrailersOf } from './h1-over-h2.js';
import type { HeaderList, RequestHead, ResponseHead, ServerStream } from './types.js';
import { seededRandom } from '../fuzz-random.js';

/** An HTTP/1 request head as the h1 codec hands it over. */
function h1(method: string, target: string, version: 10 | 11, headers: HeaderList): RequestHead {
  return { method, target, scheme: undefined, authority: undefined, version, headers };
}

/** What the far side's server role parses from the fields our client role sends for `h2`. */
function crossRequest(h2: RequestHead): RequestHead {
  const s = { expectLen: -1, expectsContinue: false, bodyless: false } as unknown as H2Stream;
  const bad = parseRequest(s, requestFields(h2), false);
  assert.equal(bad, undefined, 'a well-formed h2 request');
  return s.head;
}

/** What the far side's client role parses from the fields our server role sends for `h2`. */
function crossResponse(h2: ResponseHead): ResponseHead {
  const fields = [':status', String(h2.status)];
  appendFields(fields, h2.headers, undefined);
  const head = parseResponse({ noBody: false, expectLen: -1 } as unknown as H2Stream, fields);
  assert.equal(typeof head, 'object', `a well-formed h2 response: ${String(head)}`);
  return head as ResponseHead;
}

function roundTrip(req: RequestHead): RequestHead | undefined {
  return h1RequestOf(crossRequest(h2RequestOf(req)));
}

function responseRoundTrip(res: ResponseHead, version: 10 | 11 = 11): ResponseHead {
  return h1ResponseOf(crossResponse(h2ResponseOf(res)), version);
}

/** The h2 fields of a head named `lower`, in order. */
function values(headers: HeaderList, lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === lower) out.push(headers[i + 1]!);
  return out;
}

const INTERLEAVED = ['Host', 'web:8080', 'X-A', '1', 'x-b', '2', 'X-A', '3', 'User-Agent', 'curl/8.5.0', 'accept', '*/*'];

describe('requests: h2RequestOf → h2 → h1RequestOf', () => {
  it('carries an origin-form request in this h2 head', () => {
    const out = h2RequestOf(h1('GET', '/p?q=1&r=%20', 11, INTERLEAVED));
    assert.deepEqual(out, {
      method: 'GET',
      target: '/p?q=1&r=%20',
      scheme: 'http',
      authority: 'web:8080',
      version: 20,
      headers: [
        'x-a', '1', 'x-b', '2', 'x-a', '3', 'user-agent', 'curl/8.5.0', 'accept', '*/*',
        'mesh-orig-proto', 'HTTP/1.1',
        'mesh-orig-headers', 'Host,X-A,x-b,X-A,User-Agent,accept',
      ],
    });
    // Our h2 codec carries the interleaved duplicates as they came, Host as :authority only.
    const crossed = crossRequest(out);
    assert.deepEqual(crossed.headers, out.headers);
    assert.equal(crossed.authority, 'web:8080');
    assert.equal(crossed.scheme, 'http');
    assert.equal(crossed.target, '/p?q=1&r=%20');
    assert.equal(carriesH1(crossed), true);
  });

  it('restores method, target, version and the exact header list', () => {
    assert.deepEqual(roundTrip(h1('GET', '/p?q=1&r=%20', 11, INTERLEAVED)), h1('GET', '/p?q=1&r=%20', 11, INTERLEAVED));
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PURGE']) {
    it(`restores ${method}`, () => {
      const headers = ['Host', 'api', 'Content-Length', '2'];
      const out = h2RequestOf(h1(method, '/items/7', 11, headers));
      assert.equal(out.method, method);
      assert.deepEqual(roundTrip(h1(method, '/items/7', 11, headers)), h1(method, '/items/7', 11, headers));
    });
  }

  it('restores HTTP/1.0 as 1.0 and HTTP/1.1 as 1.1', () => {
    const headers = ['Host', 'web', 'Accept', '*/*'];
    assert.equal(values(h2RequestOf(h1('GET', '/', 10, headers)).headers, 'mesh-orig-proto')[0], 'HTTP/1.0');
    assert.equal(values(h2RequestOf(h1('GET', '/', 11, headers)).headers, 'mesh-orig-proto')[0], 'HTTP/1.1');
    assert.equal(roundTrip(h1('GET', '/', 10, headers))?.version, 10);
    assert.equal(roundTrip(h1('GET', '/', 11, headers))?.version, 11);
  });

  it('puts Host back where it was, in its case', () => {
    for (const headers of [
      ['HOST', 'web', 'Accept', '*/*', 'X-Id', '1'],
      ['Accept', '*/*', 'host', 'web', 'X-Id', '1'],
      ['Accept', '*/*', 'X-Id', '1', 'Host', 'web'],
      ['hOsT', 'web'],
      ['Host', 'web'],
    ]) {
      const out = h2RequestOf(h1('GET', '/', 11, headers));
      assert.equal(out.authority, 'web', 'Host becomes :authority');
      assert.deepEqual(values(out.headers, 'host'), [], 'and is no h2 field');
      assert.deepEqual(roundTrip(h1('GET', '/', 11, headers))?.headers, headers);
    }
  });

  it('takes the authority from Host, or from an absolute-form target', () => {
    assert.equal(h2RequestOf(h1('GET', '/', 11, ['Host', 'web:8080'])).authority, 'web:8080');
    assert.equal(h2RequestOf(h1('GET', '/', 11, ['Host', ''])).authority, '');
    assert.equal(h2RequestOf(h1('GET', 'http://web:8080/x', 10, [])).authority, 'web:8080');
    // Both: the target's authority (RFC 9112 §3.2.2: a proxy ignores Host then, and sends one
    // made from the target), so Host comes back with the target's authority, in its place and case.
    const out = h2RequestOf(h1('GET', 'http://web:8080/x', 11, ['Accept', '*/*', 'HOST', 'other']));
    assert.equal(out.authority, 'web:8080');
    assert.deepEqual(h1RequestOf(crossRequest(out)), h1('GET', 'http://web:8080/x', 11, ['Accept', '*/*', 'HOST', 'web:8080']));
  });

  it('carries only the first of two Host fields (the one the authority came from)', () => {
    const out = h2RequestOf(h1('GET', '/', 11, ['Host', 'web', 'X-A', '1', 'Host', 'evil']));
    assert.equal(out.authority, 'web');
    assert.equal(JSON.stringify(out).includes('evil'), false);
    assert.deepEqual(h1RequestOf(crossRequest(out))?.headers, ['Host', 'web', 'X-A', '1']);
  });

  it('restores an HTTP/1.0 request that had no Host, without one', () => {
    const headers = ['User-Agent', 'ab/2.3', 'Accept', '*/*'];
    const out = h2RequestOf(h1('GET', '/', 10, headers));
    assert.equal(out.authority, 'unknown', 'h2 still needs an authority');
    assert.deepEqual(values(out.headers, 'mesh-orig-proto'), ['HTTP/1.0']);
    assert.deepEqual(values(out.headers, 'mesh-orig-headers'), ['User-Agent,Accept']);
    assert.deepEqual(roundTrip(h1('GET', '/', 10, headers)), h1('GET', '/', 10, headers));
    assert.deepEqual(roundTrip(h1('GET', '/', 10, [])), h1('GET', '/', 10, []));
    // A Host whose value happens to be "unknown" is still put back.
    assert.deepEqual(roundTrip(h1('GET', '/', 10, ['Host', 'unknown']))?.headers, ['Host', 'unknown']);
  });

  it('restores an absolute-form target with its query', () => {
    for (const target of ['http://web:8080/a/b?x=1&y=two', 'http://web:8080/', 'https://web:8443/s?q']) {
      const host = target.startsWith('https') ? 'web:8443' : 'web:8080';
      const headers = ['Host', host, 'Accept', '*/*'];
      const out = h2RequestOf(h1('GET', target, 11, headers));
      assert.deepEqual(values(out.headers, 'mesh-orig-proto'), ['HTTP/1.1; absolute-form']);
      assert.equal(out.scheme, target.startsWith('https') ? 'https' : 'http');
      assert.equal(out.authority, host);
      assert.equal(out.target, target.slice(target.indexOf('/', 8)));
      assert.deepEqual(roundTrip(h1('GET', target, 11, headers)), h1('GET', target, 11, headers));
    }
    // HTTP/1.0 through a forward proxy: absolute-form, no Host.
    assert.deepEqual(roundTrip(h1('GET', 'http://web/x?1', 10, ['Accept', '*/*'])), h1('GET', 'http://web/x?1', 10, ['Accept', '*/*']));
    // An absolute-form target without a path: h2 needs one, and "/" is what it means (RFC 9112 §3.2.2).
    const bare = h2RequestOf(h1('GET', 'http://web:8080', 11, ['Host', 'web:8080']));
    assert.equal(bare.target, '/');
    assert.equal(h1RequestOf(crossRequest(bare))?.target, 'http://web:8080/');
  });

  it('restores an origin-form target as it was', () => {
    for (const target of ['/', '/a/../b', "/q?x='y'&z=%2F", '/?', '/a//b;p?x#', '/%7e?a=1&a=2', '*']) {
      const method = target === '*' ? 'OPTIONS' : 'GET';
      const out = h2RequestOf(h1(method, target, 11, ['Host', 'web']));
      assert.equal(out.target, target);
      assert.deepEqual(values(out.headers, 'mesh-orig-proto'), ['HTTP/1.1'], 'no absolute-form');
      assert.deepEqual(roundTrip(h1(method, target, 11, ['Host', 'web'])), h1(method, target, 11, ['Host', 'web']));
    }
  });

  it('does not let mesh-orig-* headers from the app through', () => {
    const headers = [
      'Host', 'web', 'Mesh-Orig-Proto', 'HTTP/1.0; absolute-form', 'X-A', '1', 'mesh-orig-headers', 'Evil,X-A',
      'MESH-ORIG-REASON', 'no', 'Mesh-Orig-Dup-X-A', 'forged', 'mesh-orig-', 'bare',
    ];
    const out = h2RequestOf(h1('GET', '/', 11, headers));
    assert.deepEqual(out.headers, ['x-a', '1', 'mesh-orig-proto', 'HTTP/1.1', 'mesh-orig-headers', 'Host,X-A']);
    assert.deepEqual(roundTrip(h1('GET', '/', 11, headers)), h1('GET', '/', 11, ['Host', 'web', 'X-A', '1']));
  });

  it('restores an absolute-form target byte for byte (no URL normalisation)', () => {
    for (const target of ["http://web:80/a/../b?x='y'", 'http://web/?', 'http://web/a\\b', 'https://web:443/%7e/./c?', 'http://WEB.Example/p']) {
      const out = h2RequestOf(h1('GET', target, 11, []));
      assert.deepEqual(values(out.headers, 'mesh-orig-proto'), ['HTTP/1.1; absolute-form']);
      assert.equal(roundTrip(h1('GET', target, 11, []))?.target, target);
    }
  });

  it('leaves a plain h2 request alone', () => {
    const plain = crossRequest({ method: 'GET', target: '/', scheme: 'https', authority: 'web', version: 20, headers: ['accept', '*/*'] });
    assert.equal(carriesH1(plain), false);
    assert.equal(h1RequestOf(plain), undefined);
  });

  it('carries repeated single-value fields as repeated h2 fields, restored in place', () => {
    const headers = [
      'Host', 'web', 'User-Agent', 'a/1', 'Content-Language', 'en', 'Accept', '*/*', 'content-language', 'de', 'User-Agent', 'b/2',
    ];
    const out = h2RequestOf(h1('POST', '/', 11, headers));
    assert.deepEqual(values(out.headers, 'user-agent'), ['a/1', 'b/2']);
    assert.deepEqual(values(out.headers, 'content-language'), ['en', 'de']);
    assert.equal(out.headers.some((n, i) => i % 2 === 0 && n.startsWith('mesh-orig-dup-')), false, 'no mesh-orig-dup-* any more');
    assert.deepEqual(roundTrip(h1('POST', '/', 11, headers))?.headers, headers);
  });

  it('restores mesh-orig-dup-* fields from a peer in their place', () => {
    // As proxy/orig-proto.ts (node:http2) sent a request repeating single-value fields.
    const fromPeer: RequestHead = {
      method: 'GET',
      target: '/',
      scheme: 'http',
      authority: 'web',
      version: 20,
      headers: [
        'user-agent', 'a/1', 'accept', '*/*', 'content-language', 'en', 'mesh-orig-dup-user-agent', 'b/2',
        'mesh-orig-dup-content-language', 'de', 'mesh-orig-dup-user-agent', 'c/3',
        'mesh-orig-proto', 'HTTP/1.1', 'mesh-orig-headers', 'Host,User-Agent,Accept,User-Agent,Content-Language,content-language,user-agent',
      ],
    };
    assert.deepEqual(h1RequestOf(crossRequest(fromPeer)), h1('GET', '/', 11, [
      'Host', 'web', 'User-Agent', 'a/1', 'Accept', '*/*', 'User-Agent', 'b/2', 'Content-Language', 'en', 'content-language', 'de', 'user-agent', 'c/3',
    ]));
  });

  it('passes the fields of a request whose names list is missing, Host first', () => {
    const fromPeer: RequestHead = {
      method: 'GET', target: '/x', scheme: 'http', authority: 'web', version: 20,
      headers: ['accept', '*/*', 'x-a', '1', 'x-a', '2', 'mesh-orig-proto', 'HTTP/1.0'],
    };
    assert.deepEqual(h1RequestOf(fromPeer), h1('GET', '/x', 10, ['host', 'web', 'accept', '*/*', 'x-a', '1', 'x-a', '2']));
    assert.deepEqual(h1RequestOf({ ...fromPeer, authority: 'unknown' })?.headers, ['accept', '*/*', 'x-a', '1', 'x-a', '2']);
  });

  it('does not carry http2-settings (h2 has no place for it)', () => {
    const out = h2RequestOf(h1('GET', '/', 11, ['Host', 'web', 'HTTP2-Settings', 'AAMAAABkAAQAAP__', 'X-A', '1']));
    assert.deepEqual(values(out.headers, 'http2-settings'), []);
    assert.deepEqual(h1RequestOf(crossRequest(out))?.headers, ['Host', 'web', 'X-A', '1']);
  });
});

describe('responses: h2ResponseOf → h2 → h1ResponseOf', () => {
  const RAW = ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Trace', 't1', 'set-cookie', 'b=2', 'Date', 'Tue, 01 Jul 2025 10:00:00 GMT'];

  it('restores status and the exact header list, without a reason header for the standard phrase', () => {
    const out = h2ResponseOf({ status: 200, reason: 'OK', version: 11, headers: RAW });
    assert.deepEqual(out, {
      status: 200,
      reason: '',
      version: 20,
      headers: [
        'content-type', 'text/plain', 'set-cookie', 'a=1', 'x-trace', 't1', 'set-cookie', 'b=2', 'date', 'Tue, 01 Jul 2025 10:00:00 GMT',
        'mesh-orig-headers', 'Content-Type,Set-Cookie,X-Trace,set-cookie,Date',
      ],
    });
    assert.deepEqual(h1ResponseOf(crossResponse(out), 11), { status: 200, reason: 'OK', version: 11, headers: RAW });
    // An empty reason (none on the status line) sends none either.
    assert.deepEqual(values(h2ResponseOf({ status: 200, reason: '', version: 11, headers: [] }).headers, 'mesh-orig-reason'), []);
  });

  it('restores a non-standard reason phrase', () => {
    for (const [status, reason] of [[200, 'Alright'], [404, 'Nothing Here'], [299, 'Custom'], [503, 'Service Unavailable Today'], [200, 'ok']] as const) {
      const out = h2ResponseOf({ status, reason, version: 11, headers: RAW });
      assert.deepEqual(values(out.headers, 'mesh-orig-reason'), [reason]);
      assert.deepEqual(h1ResponseOf(crossResponse(out), 11), { status, reason, version: 11, headers: RAW });
    }
    assert.deepEqual(values(h2ResponseOf({ status: 404, reason: 'Not Found', version: 11, headers: [] }).headers, 'mesh-orig-reason'), []);
  });

  it('keeps each head its own names list when consecutive heads share names, a prefix of them, or differ in case', () => {
    // The last list built and the last one split are reused when the names repeat: only then.
    const heads = [
      ['Server', 'a', 'Date', 'b'],
      ['Server', 'a', 'Date', 'b'],
      ['Server', 'a', 'Date', 'b', 'ETag', 'c'],
      ['Server', 'a'],
      ['server', 'a'],
      [],
      ['Server', 'a', 'Date', 'b'],
    ];
    for (const headers of heads) {
      const out = h2ResponseOf({ status: 200, reason: 'OK', version: 11, headers });
      assert.deepEqual(values(out.headers, 'mesh-orig-headers'), [headers.filter((_, i) => i % 2 === 0).join(',')]);
      assert.deepEqual(h1ResponseOf(crossResponse(out), 11).headers, headers);
    }
  });

  it('answers in the client’s HTTP version', () => {
    const out = crossResponse(h2ResponseOf({ status: 201, reason: 'Created', version: 11, headers: ['X-A', '1'] }));
    assert.deepEqual(h1ResponseOf(out, 10), { status: 201, reason: 'Created', version: 10, headers: ['X-A', '1'] });
    assert.deepEqual(h1ResponseOf(out, 11), { status: 201, reason: 'Created', version: 11, headers: ['X-A', '1'] });
  });

  it('does not let mesh-orig-* headers from the app through', () => {
    const headers = ['X-A', '1', 'Mesh-Orig-Reason', 'Forged', 'mesh-orig-headers', 'Evil', 'MESH-ORIG-PROTO', 'HTTP/1.0', 'mesh-orig-dup-x-a', '2', 'Mesh-Orig-', '3'];
    const out = h2ResponseOf({ status: 200, reason: 'OK', version: 11, headers });
    assert.deepEqual(out.headers, ['x-a', '1', 'mesh-orig-headers', 'X-A']);
    assert.deepEqual(h1ResponseOf(crossResponse(out), 11), { status: 200, reason: 'OK', version: 11, headers: ['X-A', '1'] });
  });

  it('passes every header of a response that has no names list (a proxy’s own 502)', () => {
    const own: ResponseHead = {
      status: 502,
      reason: '',
      version: 20,
      headers: ['content-type', 'text/plain', 'mesh-proxy-error', 'MESH_CONNECT_REFUSED', 'x-d', '1', 'x-d', '2'],
    };
    assert.deepEqual(h1ResponseOf(crossResponse(own), 11), {
      status: 502,
      reason: 'Bad Gateway',
      version: 11,
      headers: ['content-type', 'text/plain', 'mesh-proxy-error', 'MESH_CONNECT_REFUSED', 'x-d', '1', 'x-d', '2'],
    });
  });

  it('carries repeated single-value fields as repeated h2 fields, restored in place', () => {
    const headers = ['Content-Type', 'text/plain', 'Content-Language', 'en', 'X-A', '1', 'Content-Type', 'text/html', 'content-language', 'de'];
    const out = h2ResponseOf({ status: 200, reason: 'OK', version: 11, headers });
    assert.deepEqual(values(out.headers, 'content-type'), ['text/plain', 'text/html']);
    assert.deepEqual(values(out.headers, 'content-language'), ['en', 'de']);
    assert.deepEqual(responseRoundTrip({ status: 200, reason: 'OK', version: 11, headers }), { status: 200, reason: 'OK', version: 11, headers });
  });

  it('restores mesh-orig-dup-* fields from a peer in their place', () => {
    const fromPeer: ResponseHead = {
      status: 200,
      reason: '',
      version: 20,
      headers: [
        'content-type', 'text/plain', 'x-a', '1', 'mesh-orig-dup-content-type', 'text/html', 'date', 'd1', 'mesh-orig-dup-date', 'd2',
        'mesh-orig-headers', 'Content-Type,X-A,Date,Content-Type,date',
      ],
    };
    assert.deepEqual(h1ResponseOf(crossResponse(fromPeer), 11), {
      status: 200,
      reason: 'OK',
      version: 11,
      headers: ['Content-Type', 'text/plain', 'X-A', '1', 'Date', 'd1', 'Content-Type', 'text/html', 'date', 'd2'],
    });
  });
});

describe('h2TrailersOf', () => {
  it('lowercases names and keeps order, values and repeats', () => {
    assert.deepEqual(h2TrailersOf(['Grpc-Status', '0', 'X-T', 'a', 'grpc-message', 'ok', 'x-t', 'b']), [
      'grpc-status', '0', 'x-t', 'a', 'grpc-message', 'ok', 'x-t', 'b',
    ]);
    assert.deepEqual(h2TrailersOf([]), []);
  });
});

const SEED = Number(process.env.MESH_FUZZ_SEED ?? 0x0519);
const TCHAR = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~";
const COMMON = [
  'accept', 'user-agent', 'content-type', 'content-language', 'content-md5', 'date', 'etag', 'cookie', 'set-cookie',
  'x-a', 'x-b', 'via', 'authorization', 'location', 'cache-control', 'x-forwarded-for', 'mesh-orig', 'mesh-origin',
];

const NOT_CARRIED = new Set(['host', 'http2-settings', 'te', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'content-length']);

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** A name in random case (the same name may recur in other cases). */
  name(): string {
    let n = this.r() < 0.7 ? this.pick(COMMON) : '';
    if (n === '') for (let k = 1 + this.int(12); k > 0; k--) n += TCHAR[this.int(TCHAR.length)];
    // Never generated: what is not carried (tested above) and what the forwarder strips or frames first.
    if (n.startsWith('mesh-orig-') || NOT_CARRIED.has(n)) n = `x-${n}`;
    let out = '';
    for (const c of n) out += this.r() < 0.3 ? c.toUpperCase() : c;
    return out;
  }
  /** Visible latin1, spaces and tabs inside, commas and semicolons; possibly empty. */
  value(): string {
    let v = '';
    for (let k = this.int(24); k > 0; k--) {
      const x = this.int(10);
      v += x === 0 ? ' ' : x === 1 ? ',' : x === 2 ? String.fromCharCode(0xa0 + this.int(0x60)) : String.fromCharCode(0x21 + this.int(0x5e));
    }
    return v.trim();
  }
  /** Fields with duplicates (repeated names, interleaved, in other case). */
  headers(): HeaderList {
    const out: HeaderList = [];
    const names: string[] = [];
    for (let k = this.int(14); k > 0; k--) {
      let n: string;
      if (names.length > 0 && this.r() < 0.35) {
        n = this.pick(names);
        if (this.r() < 0.5) n = this.r() < 0.5 ? n.toLowerCase() : n.toUpperCase();
      } else n = this.name();
      names.push(n);
      out.push(n, this.value());
    }
    return out;
  }
  path(): string {
    const seg = ['a', 'b', '..', '.', '', '%2F', '%7e', "'q'", 'x;p=1', 'caf%C3%A9', '\\', '~u', '@', ':'];
    let p = '';
    for (let k = 1 + this.int(4); k > 0; k--) p += `/${this.pick(seg)}`;
    if (this.r() < 0.5) p += `?${this.pick(['', 'x=1', 'x=1&x=2', "a='b'", 'u=http://e/', 'q=%20+%2B', '?'])}`;
    return p;
  }
}

/** One random request as the h1 codec hands it over: Host (at most one) anywhere, or none. */
function randomRequest(g: Gen): RequestHead {
  const version = g.r() < 0.25 ? 10 : 11;
  const headers = g.headers();
  const host = g.pick(['web', 'web:8080', 'WEB.example:80', '10.0.0.7:8443', '[::1]:8080', '']);
  const hostName = g.pick(['Host', 'host', 'HOST', 'hOsT']);
  const absolute = g.r() < 0.35;
  const target = absolute ? `${g.pick(['http', 'https'])}://${host || 'web'}${g.path()}` : g.path();
  // An absolute-form target is the authority; a Host then names the same one.
  const withHost = absolute ? g.r() < 0.5 : version === 11 || g.r() < 0.5;
  if (withHost) {
    const at = 2 * g.int(headers.length / 2 + 1);
    headers.splice(at, 0, hostName, absolute ? host || 'web' : host);
  }
  const method = g.pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'PURGE', 'PROPFIND']);
  return h1(method, target, version, headers);
}

function randomResponse(g: Gen): ResponseHead {
  const status = g.pick([200, 201, 204, 206, 299, 301, 304, 404, 418, 451, 500, 503, 599]);
  const std = STATUS_CODES[status];
  const reason = g.r() < 0.4 && std !== undefined ? std : g.pick(['', 'Alright', 'Custom Thing', 'not found', 'OK', 'Très bien']);
  return { status, reason, version: 11, headers: g.headers() };
}

/** The reason h1ResponseOf gives: the one sent, or the standard one when none was. */
function reasonBack(status: number, reason: string): string {
  return reason !== '' ? reason : STATUS_CODES[status] ?? '';
}

describe('round trips of random heads', () => {
  it('requests: random names, case, duplicates and order come back exactly, with Host and target', () => {
    const g = new Gen(seededRandom(SEED));
    for (let i = 0; i < 2000; i++) {
      const req = randomRequest(g);
      const h2 = h2RequestOf(req);
      assert.equal(carriesH1(h2), true);
      assert.deepEqual(h1RequestOf(crossRequest(h2)), h1(req.method, req.target, req.version as 10 | 11, req.headers), `seed ${SEED} case ${i}: ${JSON.stringify(req)}`);
    }
  });

  it('responses: random names, case, duplicates and order come back exactly, with status and reason', () => {
    const g = new Gen(seededRandom(SEED + 1));
    for (let i = 0; i < 2000; i++) {
      const res = randomResponse(g);
      const version = g.r() < 0.25 ? 10 : 11;
      assert.deepEqual(responseRoundTrip(res, version), { status: res.status, reason: reasonBack(res.status, res.reason), version, headers: res.headers }, `seed ${SEED + 1} case ${i}: ${JSON.stringify(res)}`);
    }
  });
});

describe('over a real h2 connection (our client and server roles)', () => {
  let srv: OurServer;
  let client: H2ClientConnection;
  /** The response head to answer with; what the server saw of each request, with its trailers. */
  let answer: ResponseHead = { status: 200, reason: '', version: 20, headers: [] };
  const seen: Array<{ head: RequestHead; trailers: HeaderList | undefined }> = [];

  before(async () => {
    srv = await ourServer(
      {
        onRequest(s: ServerStream): void {
          const entry = { head: s.head, trailers: undefined as HeaderList | undefined };
          seen.push(entry);
          s.listen({
            onData: () => true,
            onEnd: (t) => {
              entry.trailers = t;
              s.respond(answer, true);
            },
            onReset: () => {},
            onWritable: () => {},
          });
        },
      },
      { peer: 'mesh' },
    );
    client = await ourClient(srv.port, { peer: 'mesh' });
  });

  after(async () => {
    client.destroy();
    await srv.close();
  });

  async function exchange(request: RequestHead, response: ResponseHead, trailers?: HeaderList): Promise<{ request: RequestHead; trailers: HeaderList | undefined; response: ResponseHead }> {
    answer = response;
    const before = seen.length;
    const r = new Recorder();
    const s = client.request(request, trailers === undefined, r);
    if (trailers !== undefined) s.end(trailers);
    await r.done;
    assert.equal(r.reset, undefined);
    assert.equal(seen.length, before + 1);
    return { request: seen[before]!.head, trailers: seen[before]!.trailers, response: r.head! };
  }

  it('hands over what the simulation says, both ways', async () => {
    const reqHeaders = [...INTERLEAVED, 'Cookie', 'a=1', 'cookie', 'b=2'];
    const request = h2RequestOf(h1('POST', 'http://web:8080/a?b=c', 10, reqHeaders));
    const resHeaders = ['Set-Cookie', 'a=1', 'X-A', '1', 'set-cookie', 'b=2', 'x-a', '2'];
    const response = h2ResponseOf({ status: 201, reason: 'Made', version: 11, headers: resHeaders });
    const real = await exchange(request, response);
    assert.deepEqual(real.request, crossRequest(request));
    assert.deepEqual(real.response, crossResponse(response));
    assert.deepEqual(h1RequestOf(real.request), h1('POST', 'http://web:8080/a?b=c', 10, reqHeaders));
    assert.deepEqual(h1ResponseOf(real.response, 10), { status: 201, reason: 'Made', version: 10, headers: resHeaders });
  });

  it('carries a request repeating single-value headers', async () => {
    const headers = ['Host', 'web', 'User-Agent', 'a/1', 'Content-Language', 'en', 'Accept', '*/*', 'User-Agent', 'b/2', 'content-language', 'de'];
    const real = await exchange(h2RequestOf(h1('GET', '/', 11, headers)), { status: 204, reason: '', version: 20, headers: [] });
    assert.deepEqual(h1RequestOf(real.request)?.headers, headers);
  });

  it('carries a response repeating single-value headers', async () => {
    const headers = ['Content-Type', 'text/plain', 'X-A', '1', 'Content-Type', 'text/html', 'Content-Language', 'en', 'content-language', 'de'];
    const real = await exchange(h2RequestOf(h1('GET', '/', 11, ['Host', 'web'])), h2ResponseOf({ status: 200, reason: 'OK', version: 11, headers }));
    assert.deepEqual(h1ResponseOf(real.response, 11), { status: 200, reason: 'OK', version: 11, headers });
  });

  it('carries trailers, names lower-cased, order and repeats kept', async () => {
    const real = await exchange(
      h2RequestOf(h1('POST', '/t', 11, ['Host', 'web', 'Trailer', 'X-T'])),
      { status: 200, reason: '', version: 20, headers: [] },
      h2TrailersOf(['Grpc-Status', '0', 'X-T', 'a', 'x-t', 'b']),
    );
    assert.deepEqual(real.trailers, ['grpc-status', '0', 'x-t', 'a', 'x-t', 'b']);
  });

  it('round-trips random requests and responses', async () => {
    const g = new Gen(seededRandom(SEED + 2));
    for (let i = 0; i < 100; i++) {
      const req = randomRequest(g);
      const res = randomResponse(g);
      const real = await exchange(h2RequestOf(req), h2ResponseOf(res));
      const what = `seed ${SEED + 2} case ${i}: ${JSON.stringify([req, res])}`;
      assert.deepEqual(h1RequestOf(real.request), h1(req.method, req.target, req.version as 10 | 11, req.headers), what);
      assert.deepEqual(h1ResponseOf(real.response, 11), { status: res.status, reason: reasonBack(res.status, res.reason), version: 11, headers: res.headers }, what);
    }
  });
});
