// The admin port in-process: /metrics as the registry formats it (written in pieces, with its
// length), the probes, and the refusals.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { startAdmin } from './admin.js';
import { ProxyMetrics } from './metrics.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function ask(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin port', () => {
  const metrics = new ProxyMetrics(false);
  let ready = false;
  let server: Server;
  let port = 0;

  before(async () => {
    // Enough series for several pieces, and a label that is not ASCII: the length counts bytes.
    const conn = metrics.connection({ direction: 'inbound', target_addr: '10.0.0.7:8080', tls: 'true', client_id: 'wëb.default.serviceaccount.identity.mesh.local' });
    for (let i = 0; i < 400; i++) {
      const r = metrics.route(conn, `svc-${i}.default.svc.cluster.local:8080`);
      r.request();
      r.responseHeaders(200, i);
      r.responseEnd(200, undefined, undefined);
    }
    server = await startAdmin({ host: '127.0.0.1', port: 0 }, { metrics, ready: () => ready });
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('serves /metrics whole, with its length in bytes', async () => {
    const r = await ask(port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], metrics.registry.contentType);
    assert.equal(Number(r.headers['content-length']), r.body.length);
    assert.equal(r.body.toString('utf8'), await metrics.registry.metrics());
    assert.ok(r.body.length > 256 * 1024, `${r.body.length} bytes`);
    assert.match(r.body.toString('utf8'), /client_id="wëb\.default/);
  });

  it('answers HEAD with the headers only', async () => {
    const r = await ask(port, '/metrics', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.ok(Number(r.headers['content-length']) > 256 * 1024);
  });

  it('says live at once, ready only when the proxy is', async () => {
    assert.equal((await ask(port, '/live')).status, 200);
    assert.equal((await ask(port, '/ready')).status, 503);
    ready = true;
    assert.equal((await ask(port, '/ready')).status, 200);
  });

  it('refuses other methods and paths', async () => {
    const post = await ask(port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const missing = await ask(port, '/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /try \/metrics/);
  });
});
