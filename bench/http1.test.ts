import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpParseError, ResponseReader } from './http1.js';

const NGINX = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 15\r\nConnection: keep-alive\r\n\r\nhello from web\n';
const CHUNKED = 'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: 1\r\n\r\n';

function read(chunks: string[]): number[] {
  const seen: number[] = [];
  const r = new ResponseReader((status) => seen.push(status));
  for (const c of chunks) r.push(Buffer.from(c, 'latin1'));
  assert.equal(r.idle(), true, 'a complete stream leaves the reader between responses');
  return seen;
}

describe('ResponseReader', () => {
  it('reads back-to-back Content-Length and chunked responses from one chunk', () => {
    assert.deepEqual(read([NGINX + CHUNKED + NGINX]), [200, 503, 200]);
  });

  it('reads the same stream split at every byte', () => {
    const all = NGINX + CHUNKED + 'HTTP/1.1 100 Continue\r\n\r\n' + NGINX + 'HTTP/1.1 204 No Content\r\n\r\n';
    assert.deepEqual(read([...all]), [200, 503, 200, 204]);
  });

  it('is mid-response until the body has arrived', () => {
    const seen: number[] = [];
    const r = new ResponseReader((s) => seen.push(s));
    r.push(Buffer.from(NGINX.slice(0, -3)));
    assert.equal(r.idle(), false);
    assert.deepEqual(seen, []);
    r.push(Buffer.from(NGINX.slice(-3)));
    assert.deepEqual(seen, [200]);
  });

  it('rejects what is not an HTTP/1.x response, and bodies delimited by close', () => {
    assert.throws(() => read(['SSH-2.0-OpenSSH\r\n\r\n']), HttpParseError);
    assert.throws(() => read(['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody']), HttpParseError);
  });
});
