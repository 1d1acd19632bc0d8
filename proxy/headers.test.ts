// The hop-by-hop filter runs on every HTTP/1 head in both directions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commonName, endToEnd, lowerName } from './headers.js';

describe('endToEnd', () => {
  it('returns the list itself when nothing is hop-by-hop (no copy on the common path)', () => {
    const raw = ['Host', 'a', 'User-Agent', 'x', 'X-Trace', '1', 'Content-Length', '0'];
    assert.equal(endToEnd(raw), raw);
  });

  it('drops the fixed hop-by-hop fields in any case, keeping the rest in order', () => {
    const raw = ['Host', 'a', 'CONNECTION', 'keep-alive', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c', 'Proxy-Connection', 'x', 'Proxy-Authenticate', 'y', 'proxy-authorization', 'z', 'X-Last', '1'];
    assert.deepEqual(endToEnd(raw), ['Host', 'a', 'X-Last', '1']);
  });

  it('drops the fields the Connection header names, whatever their length and case', () => {
    const raw = ['Connection', 'close, X-Secret-Hop ,x-b', 'X-Secret-Hop', '1', 'X-B', '2', 'X-Keep', '3'];
    assert.deepEqual(endToEnd(raw), ['X-Keep', '3']);
  });

  it('Connection: keep-alive (any case) drops only itself; a named token drops its field in any case', () => {
    assert.deepEqual(endToEnd(['Server', 'x', 'Connection', 'Keep-Alive', 'Keep-Alive', 'timeout=5', 'Content-Length', '2']), ['Server', 'x', 'Content-Length', '2']);
    assert.deepEqual(endToEnd(['connection', 'close', 'CLOSE', 'y', 'Date', 'd']), ['Date', 'd']);
    assert.deepEqual(endToEnd(['Connection', 'TE, Trailer', 'te', 'trailers', 'trailer', 'x', 'A', 'b']), ['A', 'b']);
  });

  it('keeps a field of a hop-by-hop name\'s length that is no hop-by-hop field', () => {
    const raw = ['X-Request', '1', 'Keep-Alivz', '2', 'tx', '3'];
    assert.equal(endToEnd(raw), raw);
  });
});

describe('common header names', () => {
  const bytes = (s: string): Buffer => Buffer.from(`xx${s}yy`, 'latin1');
  it('gives the constant only for an exact byte match, so the case an app sent is kept', () => {
    assert.equal(commonName(bytes('Content-Type'), 2, 14), 'Content-Type');
    assert.equal(commonName(bytes('content-type'), 2, 14), 'content-type');
    assert.equal(commonName(bytes('CONTENT-TYPE'), 2, 14), undefined);
    assert.equal(commonName(bytes('Content-Tipe'), 2, 14), undefined);
    assert.equal(commonName(bytes('X-Made-Up-Name'), 2, 16), undefined);
    assert.equal(commonName(bytes('TE'), 2, 4), 'TE');
    assert.equal(commonName(bytes(''), 2, 2), undefined);
  });
  it('lower-cases any name, common or not, and leaves a lower-case one as it is', () => {
    assert.equal(lowerName('Content-Type'), 'content-type');
    assert.equal(lowerName('X-Made-Up-NAME'), 'x-made-up-name');
    assert.equal(lowerName('traceparent'), 'traceparent');
    assert.equal(lowerName('x-lower'), 'x-lower');
    assert.equal(lowerName('TE'), 'te');
  });
});
