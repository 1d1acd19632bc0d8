// The control-plane transport alone: a real HTTP/2 TLS server on port 0 with
// endpoints made to misbehave, and the client's reading of every kind of answer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { createCsr, createIssuer, createTrustAnchor, issueLeaf, loadSigner, tlsKeyPem } from '../ca/index.js';
import { ApiClientError, ApiError, createApiServer, postJson, type ApiServer, type RequestMeta } from './api.js';

const NAME = 'api.mesh.serviceaccount.identity.cluster.local';

describe('control-plane API transport', () => {
  let anchorPem: string;
  let api: ApiServer;
  let url: string;
  const failures: Array<{ code: string; status: number; meta: RequestMeta; body: unknown }> = [];

  before(async () => {
    const anchor = await createTrustAnchor();
    const issuer = await loadSigner(await createIssuer(anchor));
    const csr = await createCsr(NAME);
    const leaf = await issueLeaf({ issuer, csr: csr.der, identity: NAME });
    anchorPem = anchor.certPem;
    api = createApiServer({
      certPem: leaf.chainPem,
      keyPem: tlsKeyPem(csr.privateKey),
      ready: () => false,
      requestTimeoutMs: 200,
      endpoints: [
        { path: '/echo', handle: async (body) => ({ echo: body }), failed: (e, meta, body) => void failures.push({ code: e.code, status: e.status, meta, body }) },
        { path: '/refuse', handle: async () => Promise.reject(new ApiError(403, 'NOPE', 'not you')) },
        { path: '/crash', handle: async () => Promise.reject(new Error('secret detail')), failed: (e, meta, body) => void failures.push({ code: e.code, status: e.status, meta, body }) },
      ],
    });
    const { port } = await api.listen('127.0.0.1', 0);
    url = `https://127.0.0.1:${port}`;
  });

  after(() => api.close());

  const post = (path: string, body: unknown) => postJson({ url, path, body, trustAnchorPem: anchorPem, serverName: NAME, timeoutMs: 2000 });
  const refused = (status: number, serverCode: string) => (e: unknown) =>
    e instanceof ApiClientError && e.code === 'MESH_API_REFUSED' && e.status === status && e.serverCode === serverCode;

  it('round-trips JSON', async () => {
    assert.deepEqual(await post('/echo', { a: [1, 'two'] }), { echo: { a: [1, 'two'] } });
  });

  it('answers refusals and failures as { code, message }, hiding what an unexpected error says', async () => {
    await assert.rejects(post('/refuse', {}), refused(403, 'NOPE'));
    await assert.rejects(post('/crash', {}), (e: unknown) => refused(500, 'MESH_API_INTERNAL')(e) && !/secret/.test((e as Error).message));
    const crash = failures.find((f) => f.meta.path === '/crash');
    assert.equal((crash as unknown as { code: string }).code, 'MESH_API_INTERNAL');
    await assert.rejects(post('/nowhere', {}), refused(404, 'MESH_API_NOT_FOUND'));
  });

  it('gives up on a body that does not arrive, and says so to the endpoint', async () => {
    const session = http2.connect(url, { ca: anchorPem, servername: NAME });
    try {
      const req = session.request({ ':method': 'POST', ':path': '/echo', 'content-type': 'application/json' });
      req.write('{"slow":'); // and nothing more
      const [headers] = (await Promise.race([
        new Promise((resolve) => req.once('response', (h) => resolve([h]))),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no 408 within 2 s')), 2000).unref()),
      ])) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 408);
      assert.ok(failures.some((f) => f.code === 'MESH_API_TIMEOUT' && f.status === 408 && f.body === undefined));
    } finally {
      session.destroy();
    }
  });

  it('reports /ready as the service says, /live always', async () => {
    const get = async (path: string): Promise<number> => {
      const session = http2.connect(url, { ca: anchorPem, servername: NAME });
      try {
        const req = session.request({ ':path': path });
        req.resume();
        return Number(await new Promise((resolve) => req.once('response', (h) => resolve(h[':status']))));
      } finally {
        session.close();
      }
    };
    assert.equal(await get('/live'), 200);
    assert.equal(await get('/ready'), 503);
  });

  it('client: a server that is not TLS is unreachable, one that is silent times out', async () => {
    const net = await import('node:net');
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      await assert.rejects(
        postJson({ url: `https://127.0.0.1:${port}`, path: '/x', body: {}, trustAnchorPem: anchorPem, serverName: NAME, timeoutMs: 150 }),
        (e: unknown) => e instanceof ApiClientError && e.code === 'MESH_API_UNREACHABLE' && /no answer within 150 ms/.test(e.message),
      );
    } finally {
      silent.close();
    }
  });
});
