import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestHead, ResponseHead } from '../message/types.js';
import { lastChunk, serializeRequest, serializeResponse } from './serialize.js';

const req = (method: string, headers: string[], version: 10 | 11 | 20 = 11): RequestHead => ({ method, target: '/t?q', scheme: undefined, authority: undefined, version, headers });
const res = (status: number, headers: string[], reason = ''): ResponseHead => ({ status, reason, version: 11, headers });

describe('serializeRequest', () => {
  it('keeps names, case, order and values; speaks HTTP/1.1 whatever the client spoke; says keep-alive as Node does', () => {
    const s = serializeRequest(req('GET', ['Host', 'a', 'X-Mixed-Case', 'v1', 'cookie', 'a=1', 'cookie', 'b=2'], 20), true);
    assert.equal(s.head, 'GET /t?q HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: v1\r\ncookie: a=1\r\ncookie: b=2\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(s.framing, 'none');
  });
  it('a body without a usable length goes chunked, whatever the method (anti-smuggling)', () => {
    for (const m of ['GET', 'DELETE', 'OPTIONS', 'POST']) {
      const s = serializeRequest(req(m, ['Host', 'a']), false);
      assert.equal(s.framing, 'chunked');
      assert.match(s.head, /\r\nTransfer-Encoding: chunked\r\n\r\n$/);
    }
    // Two lengths, a list or junk: dropped, and chunked instead.
    for (const cl of [['Content-Length', '5', 'Content-Length', '6'], ['Content-Length', '5, 5'], ['Content-Length', 'x']]) {
      const s = serializeRequest(req('POST', cl), false);
      assert.equal(s.framing, 'chunked');
      assert.doesNotMatch(s.head, /content-length/i);
    }
  });
  it('a valid Content-Length means identity; connection-framing fields from the list are never copied', () => {
    const s = serializeRequest(req('PUT', ['Content-Length', '3', 'Transfer-Encoding', 'chunked', 'Connection', 'close']), false);
    assert.equal(s.framing, 'length');
    assert.equal(s.head, 'PUT /t?q HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n');
    // A bodyless request promising bytes would hang the server.
    assert.equal(serializeRequest(req('GET', ['Content-Length', '3']), true).head, 'GET /t?q HTTP/1.1\r\nConnection: keep-alive\r\n\r\n');
  });
});

describe('serializeResponse', () => {
  it('length, chunked for HTTP/1.1, close-delimited for HTTP/1.0, content-length: 0 when ending at once', () => {
    assert.equal(serializeResponse(res(200, ['Content-Length', '2']), false, 'GET', 11, true).framing, 'length');
    const c = serializeResponse(res(200, ['X', 'y']), false, 'GET', 11, true);
    assert.equal(c.head, 'HTTP/1.1 200 OK\r\nX: y\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\nTransfer-Encoding: chunked\r\n\r\n');
    const ten = serializeResponse(res(200, []), false, 'GET', 10, true);
    assert.equal(ten.framing, 'close');
    assert.equal(ten.close, true);
    assert.equal(ten.head, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
    assert.equal(serializeResponse(res(404, [], 'Nope'), true, 'GET', 11, false).head, 'HTTP/1.1 404 Nope\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    assert.equal(serializeResponse(res(200, ['Content-Length', '0']), true, 'GET', 10, true, 5).head, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n');
  });
  it('HEAD keeps its Content-Length; 204 and 304 get no framing of ours (only the connection field)', () => {
    assert.equal(serializeResponse(res(200, ['Content-Length', '9']), true, 'HEAD', 11, false).head, 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n');
    assert.equal(serializeResponse(res(204, ['Content-Length', '0']), true, 'GET', 11, false).head, 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
    assert.equal(serializeResponse(res(304, ['ETag', '"x"']), true, 'GET', 11, false).head, 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nConnection: close\r\n\r\n');
  });
  it('trailers only in the last chunk, never framing fields', () => {
    assert.equal(lastChunk(undefined), '0\r\n\r\n');
    assert.equal(lastChunk(['grpc-status', '0', 'Content-Length', '5']), '0\r\ngrpc-status: 0\r\n\r\n');
  });
});
