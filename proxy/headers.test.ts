// The hop-by-hop filter runs on every HTTP/1 head in both directions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd } from './headers.js';

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
