// HTTP/1 carried over h2 between proxies and restored on the far side. The
// crossing is simulated the way nghttp2 sends an OutgoingHttpHeaders object and
// Node receives it (one test checks the simulation against a real h2 session):
// names lowercased, pseudo-headers first, then each key in object order with
// array values expanded; the receiver gets that flat list as rawHeaders and an
// object with duplicates joined.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { h1RequestOf, h1ResponseOf, h2RequestOf, h2ResponseOf, h2TrailersOf, type H1Request } from './orig-proto.js';

interface Crossed {
  headers: IncomingHttpHeaders;
  raw: string[];
}

/** What the far side's 'stream' (or 'response') event hands over for `out`. */
function overH2(out: OutgoingHttpHeaders): Crossed {
  const fields: Array<[string, string]> = [];
  const entries = Object.entries(out).filter(([, v]) => v !== undefined);
  const ordered = [...entries.filter(([k]) => k.startsWith(':')), ...entries.filter(([k]) => !k.startsWith(':'))];
  for (const [key, value] of ordered) {
    const name = key.toLowerCase();
    for (const v of Array.isArray(value) ? value : [value]) fields.push([name, String(v)]);
  }
  const headers: IncomingHttpHeaders = {};
  for (const [name, v] of fields) {
    const had = headers[name];
    if (name === 'set-cookie') headers[name] = [...(had as string[] | undefined ?? []), v];
    else if (had === undefined) headers[name] = v;
    else headers[name] = `${String(had)}${name === 'cookie' ? '; ' : ', '}${v}`;
  }
  // Node hands the status over as a number.
  if (headers[':status'] !== undefined) (headers as Record<string, unknown>)[':status'] = Number(headers[':status']);
  return { headers, raw: fields.flat() };
}

function roundTrip(req: H1Request): ReturnType<typeof h1RequestOf> {
  const { headers, raw } = overH2(h2RequestOf(req));
  return h1RequestOf(headers, raw);
}

const INTERLEAVED = ['Host', 'web:8080', 'X-A', '1', 'x-b', '2', 'X-A', '3', 'User-Agent', 'curl/8.5.0', 'accept', '*/*'];

describe('requests: h2RequestOf → h2 → h1RequestOf', () => {
  it('carries an origin-form request in these h2 headers', () => {
    const out = h2RequestOf({ method: 'GET', url: '/p?q=1&r=%20', httpVersion: '1.1', rawHeaders: INTERLEAVED });
    assert.deepEqual(out, {
      ':method': 'GET',
      ':scheme': 'http',
      ':path': '/p?q=1&r=%20',
      'x-a': ['1', '3'],
      'x-b': '2',
      'user-agent': 'curl/8.5.0',
      accept: '*/*',
      ':authority': 'web:8080',
      'mesh-orig-proto': 'HTTP/1.1',
      'mesh-orig-headers': 'Host,X-A,x-b,X-A,User-Agent,accept',
    });
    // On the wire the interleaved duplicates travel grouped: the names list puts them back.
    assert.deepEqual(overH2(out).raw.slice(8, 14), ['x-a', '1', 'x-a', '3', 'x-b', '2']);
  });

  it('restores method, target, version and the exact header list', () => {
    assert.deepEqual(roundTrip({ method: 'GET', url: '/p?q=1&r=%20', httpVersion: '1.1', rawHeaders: INTERLEAVED }), {
      method: 'GET',
      url: '/p?q=1&r=%20',
      httpVersion: '1.1',
      rawHeaders: INTERLEAVED,
    });
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PURGE']) {
    it(`restores ${method}`, () => {
      const rawHeaders = ['Host', 'api', 'Content-Length', '2'];
      assert.deepEqual(roundTrip({ method, url: '/items/7', httpVersion: '1.1', rawHeaders }), { method, url: '/items/7', httpVersion: '1.1', rawHeaders });
    });
  }

  it('puts Host back where it was, in its case', () => {
    for (const rawHeaders of [
      ['HOST', 'web', 'Accept', '*/*', 'X-Id', '1'],
      ['Accept', '*/*', 'host', 'web', 'X-Id', '1'],
      ['Accept', '*/*', 'X-Id', '1', 'Host', 'web'],
      ['Host', 'web'],
    ]) {
      assert.deepEqual(roundTrip({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders })?.rawHeaders, rawHeaders);
    }
  });

  it('restores an HTTP/1.0 request that had no Host, without one', () => {
    const rawHeaders = ['User-Agent', 'ab/2.3', 'Accept', '*/*'];
    const out = h2RequestOf({ method: 'GET', url: '/', httpVersion: '1.0', rawHeaders });
    assert.equal(out[':authority'], 'unknown', 'h2 still needs an authority');
    assert.equal(out['mesh-orig-proto'], 'HTTP/1.0');
    assert.deepEqual(roundTrip({ method: 'GET', url: '/', httpVersion: '1.0', rawHeaders }), { method: 'GET', url: '/', httpVersion: '1.0', rawHeaders });
    assert.deepEqual(roundTrip({ method: 'GET', url: '/', httpVersion: '1.0', rawHeaders: [] })?.rawHeaders, []);
  });

  it('restores an absolute-form target with its query', () => {
    for (const url of ['http://web:8080/a/b?x=1&y=two', 'http://web:8080/', 'https://web:8443/s?q']) {
      const host = url.startsWith('https') ? 'web:8443' : 'web:8080';
      const raw = ['Host', host, 'Accept', '*/*'];
      const out = h2RequestOf({ method: 'GET', url, httpVersion: '1.1', rawHeaders: raw });
      assert.match(String(out['mesh-orig-proto']), /^HTTP\/1\.1; absolute-form$/);
      assert.deepEqual(roundTrip({ method: 'GET', url, httpVersion: '1.1', rawHeaders: raw }), { method: 'GET', url, httpVersion: '1.1', rawHeaders: raw });
    }
    // HTTP/1.0 through a forward proxy: absolute-form, no Host.
    assert.deepEqual(roundTrip({ method: 'GET', url: 'http://web/x?1', httpVersion: '1.0', rawHeaders: ['Accept', '*/*'] }), {
      method: 'GET',
      url: 'http://web/x?1',
      httpVersion: '1.0',
      rawHeaders: ['Accept', '*/*'],
    });
  });

  it('does not let mesh-orig-* headers from the app through', () => {
    const rawHeaders = ['Host', 'web', 'Mesh-Orig-Proto', 'HTTP/1.0; absolute-form', 'X-A', '1', 'mesh-orig-headers', 'Evil,X-A', 'MESH-ORIG-REASON', 'no'];
    const out = h2RequestOf({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders });
    assert.equal(out['mesh-orig-proto'], 'HTTP/1.1');
    assert.equal(out['mesh-orig-headers'], 'Host,X-A');
    assert.equal(out['mesh-orig-reason'], undefined);
    assert.deepEqual(roundTrip({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders }), {
      method: 'GET',
      url: '/',
      httpVersion: '1.1',
      rawHeaders: ['Host', 'web', 'X-A', '1'],
    });
  });

  // Known gap: WHATWG URL parsing normalises the target (default port, dot
  // segments, quote in the query, empty query), so the app sees another one.
  it('restores an absolute-form target byte for byte', () => {
    for (const url of ["http://web:80/a/../b?x='y'", 'http://web/?', 'http://web/a\\b']) {
      assert.equal(roundTrip({ method: 'GET', url, httpVersion: '1.1', rawHeaders: [] })?.url, url);
    }
  });

  it('leaves a plain h2 request alone', () => {
    const { headers, raw } = overH2({ ':method': 'GET', ':scheme': 'https', ':authority': 'web', ':path': '/', accept: '*/*' });
    assert.equal(h1RequestOf(headers, raw), undefined);
  });
});

describe('responses: h2ResponseOf → h2 → h1ResponseOf', () => {
  const RAW = ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Trace', 't1', 'set-cookie', 'b=2', 'Date', 'Tue, 01 Jul 2025 10:00:00 GMT'];

  it('restores status and the exact header list, without a reason header for the standard phrase', () => {
    const out = h2ResponseOf(200, 'OK', RAW);
    assert.deepEqual(out, {
      ':status': 200,
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
      'x-trace': 't1',
      date: 'Tue, 01 Jul 2025 10:00:00 GMT',
      'mesh-orig-headers': 'Content-Type,Set-Cookie,X-Trace,set-cookie,Date',
    });
    const { headers, raw } = overH2(out);
    assert.deepEqual(h1ResponseOf(headers, raw), { status: 200, reason: undefined, rawHeaders: RAW });
  });

  it('restores a non-standard reason phrase', () => {
    for (const [status, reason] of [[200, 'Alright'], [404, 'Nothing Here'], [299, 'Custom'], [503, 'Service Unavailable Today']] as const) {
      const out = h2ResponseOf(status, reason, RAW);
      assert.equal(out['mesh-orig-reason'], reason);
      const { headers, raw } = overH2(out);
      assert.deepEqual(h1ResponseOf(headers, raw), { status, reason, rawHeaders: RAW });
    }
    assert.equal(h2ResponseOf(404, 'Not Found', [])['mesh-orig-reason'], undefined);
  });

  it('does not let mesh-orig-* headers from the app through', () => {
    const out = h2ResponseOf(200, 'OK', ['X-A', '1', 'Mesh-Orig-Reason', 'Forged', 'mesh-orig-headers', 'Evil']);
    assert.equal(out['mesh-orig-reason'], undefined);
    const { headers, raw } = overH2(out);
    assert.deepEqual(h1ResponseOf(headers, raw), { status: 200, reason: undefined, rawHeaders: ['X-A', '1'] });
  });

  it('passes every header of a response that has no names list (a proxy’s own 502)', () => {
    const { headers, raw } = overH2({ ':status': 502, 'content-type': 'text/plain', 'mesh-proxy-error': 'MESH_CONNECT_REFUSED', 'x-d': ['1', '2'] });
    assert.deepEqual(h1ResponseOf(headers, raw), {
      status: 502,
      reason: undefined,
      rawHeaders: ['content-type', 'text/plain', 'mesh-proxy-error', 'MESH_CONNECT_REFUSED', 'x-d', '1', 'x-d', '2'],
    });
  });
});

describe('h2TrailersOf', () => {
  it('lowercases and groups', () => {
    assert.deepEqual(h2TrailersOf(['Grpc-Status', '0', 'X-T', 'a', 'grpc-message', 'ok', 'x-t', 'b']), {
      'grpc-status': '0',
      'x-t': ['a', 'b'],
      'grpc-message': 'ok',
    });
    assert.deepEqual(h2TrailersOf([]), {});
  });
});

describe('over a real h2 session', () => {
  let server: http2.Http2Server;
  let session: ClientHttp2Session;
  /** What the server saw of each request, and the headers to answer it with. */
  let answer: OutgoingHttpHeaders = { ':status': 200 };
  const seen: Crossed[] = [];

  before(async () => {
    server = http2.createServer();
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      seen.push({ headers, raw });
      try {
        stream.respond(answer, { endStream: true, sendDate: false } as never);
      } catch (e) {
        // Reported rather than thrown: a throw here would take the test process down.
        stream.respond({ ':status': 500, 'x-respond-error': (e as NodeJS.ErrnoException).code ?? 'unknown' }, { endStream: true });
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await once(session, 'connect');
  });

  after(async () => {
    session.close();
    await new Promise((resolve) => server.close(resolve));
  });

  async function exchange(request: OutgoingHttpHeaders, response: OutgoingHttpHeaders): Promise<{ request: Crossed; response: Crossed }> {
    answer = response;
    const before = seen.length;
    const stream = session.request(request, { endStream: true });
    const [headers, , raw] = (await once(stream, 'response')) as [IncomingHttpHeaders, number, string[]];
    stream.resume();
    await once(stream, 'close');
    assert.equal(seen.length, before + 1);
    return { request: seen[before]!, response: { headers, raw } };
  }

  it('hands over what the simulation says, both ways', async () => {
    const request = h2RequestOf({ method: 'POST', url: 'http://web:8080/a?b=c', httpVersion: '1.0', rawHeaders: [...INTERLEAVED, 'Cookie', 'a=1', 'cookie', 'b=2'] });
    const response = h2ResponseOf(201, 'Made', ['Set-Cookie', 'a=1', 'X-A', '1', 'set-cookie', 'b=2', 'x-a', '2']);
    const real = await exchange(request, response);
    // Node's object has a null prototype and a symbol listing sensitive headers; compare its fields.
    assert.deepEqual(real.request.raw, overH2(request).raw);
    assert.deepEqual(Object.fromEntries(Object.entries(real.request.headers)), overH2(request).headers);
    assert.deepEqual(real.response.raw, overH2(response).raw);
    assert.deepEqual(Object.fromEntries(Object.entries(real.response.headers)), overH2(response).headers);
    assert.deepEqual(h1RequestOf(real.request.headers, real.request.raw), {
      method: 'POST',
      url: 'http://web:8080/a?b=c',
      httpVersion: '1.0',
      rawHeaders: [...INTERLEAVED, 'Cookie', 'a=1', 'cookie', 'b=2'],
    });
    assert.deepEqual(h1ResponseOf(real.response.headers, real.response.raw), {
      status: 201,
      reason: 'Made',
      rawHeaders: ['Set-Cookie', 'a=1', 'X-A', '1', 'set-cookie', 'b=2', 'x-a', '2'],
    });
  });

  // h2 (Node's http2) allows one value for some fields (user-agent, content-type,
  // date, location, ...) and throws ERR_HTTP2_HEADER_SINGLE_VALUE on a second:
  // the later values travel as mesh-orig-dup-NAME and are put back in place.
  it('carries a request repeating a single-value header', async () => {
    const rawHeaders = ['Host', 'web', 'User-Agent', 'a/1', 'Accept', '*/*', 'User-Agent', 'b/2'];
    const real = await exchange(h2RequestOf({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders }), { ':status': 204 });
    assert.deepEqual(h1RequestOf(real.request.headers, real.request.raw)?.rawHeaders, rawHeaders);
  });

  it('carries a response repeating a single-value header', async () => {
    const rawHeaders = ['Content-Type', 'text/plain', 'X-A', '1', 'Content-Type', 'text/html'];
    const real = await exchange({ ':method': 'GET', ':path': '/', ':scheme': 'http', ':authority': 'web' }, h2ResponseOf(200, 'OK', rawHeaders));
    assert.equal(real.response.headers['x-respond-error'], undefined);
    assert.deepEqual(h1ResponseOf(real.response.headers, real.response.raw), { status: 200, reason: undefined, rawHeaders });
  });
});
