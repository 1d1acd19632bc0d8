// The certificates as Node's TLS stack (OpenSSL) uses them: real sockets on
// port 0, the real clock (OpenSSL checks validity against it), default
// hostname checking against the identity.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { makeCa, makeLeaf, type TestCa } from './fixtures.js';

const SERVER = 'web.default.serviceaccount.identity.cluster.local';
const CLIENT = 'client.emojivoto.serviceaccount.identity.cluster.local';

interface Seen {
  authorized: boolean;
  san: string | undefined;
  error?: string;
}

describe('TLS with mesh certificates', () => {
  let ca: TestCa;
  let stranger: TestCa;
  let server: tls.Server;
  let port: number;
  const seen: Seen[] = [];
  const serverErrors: string[] = [];

  before(async () => {
    const now = new Date();
    ca = await makeCa(now);
    stranger = await makeCa(now);
    const leaf = await makeLeaf(ca, SERVER, now);
    // Mutual: a client must present a leaf from the same anchor.
    server = tls.createServer({ cert: leaf.chainPem, key: leaf.keyPem, ca: ca.anchor.certPem, requestCert: true, rejectUnauthorized: true });
    server.on('secureConnection', (socket) => {
      const peer = socket.getPeerCertificate();
      seen.push({ authorized: socket.authorized, san: peer.subjectaltname });
      socket.end('hello from web');
    });
    server.on('tlsClientError', (e) => serverErrors.push(e.message));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(() => server.close());

  async function connect(options: tls.ConnectionOptions): Promise<{ body: string; authorized: boolean }> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.anchor.certPem, servername: SERVER, ...options });
    let body = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (body += d));
    await once(socket, 'secureConnect');
    const authorized = socket.authorized;
    await once(socket, 'end');
    socket.destroy();
    return { body, authorized };
  }

  it('verifies a server as its identity (server-only TLS)', async () => {
    const leaf = await makeLeaf(ca, SERVER, new Date());
    const plain = tls.createServer({ cert: leaf.chainPem, key: leaf.keyPem }, (socket) => socket.end('one-way'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: (plain.address() as AddressInfo).port, ca: ca.anchor.certPem, servername: SERVER });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true);
      assert.equal(socket.getPeerCertificate().subjectaltname, `DNS:${SERVER}`);
      const [data] = (await once(socket, 'data')) as [Buffer];
      assert.equal(data.toString(), 'one-way');
      socket.destroy();
    } finally {
      plain.close();
    }
  });

  it('verifies the server as its identity, and the server sees the client’s', async () => {
    const client = await makeLeaf(ca, CLIENT, new Date());
    const before = seen.length;
    const r = await connect({ cert: client.chainPem, key: client.keyPem });
    assert.equal(r.authorized, true);
    assert.equal(r.body, 'hello from web');
    assert.deepEqual(seen.slice(before), [{ authorized: true, san: `DNS:${CLIENT}` }]);
  });

  it('fails the handshake for another name', async () => {
    const client = await makeLeaf(ca, CLIENT, new Date());
    await assert.rejects(
      connect({ cert: client.chainPem, key: client.keyPem, servername: 'db.default.serviceaccount.identity.cluster.local' }),
      (e: NodeJS.ErrnoException) => e.code === 'ERR_TLS_CERT_ALTNAME_INVALID',
    );
  });

  it('fails against another trust anchor, either way round', async () => {
    const errorsBefore = serverErrors.length;
    const client = await makeLeaf(ca, CLIENT, new Date());
    await assert.rejects(
      connect({ cert: client.chainPem, key: client.keyPem, ca: stranger.anchor.certPem }),
      (e: NodeJS.ErrnoException) => e.code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
    const foreign = await makeLeaf(stranger, CLIENT, new Date());
    const before = seen.length;
    // TLS 1.3: the client finishes its side first, then the server refuses its certificate.
    const r = await connect({ cert: foreign.chainPem, key: foreign.keyPem }).catch((e: Error) => ({ body: '', error: e.message }));
    assert.equal(r.body, '', 'no application data for a refused client');
    assert.equal(seen.length, before, 'the server must not accept a client from another anchor');
    // Node drops a refused client after the handshake; all it reports is the hang-up.
    assert.ok(serverErrors.length > errorsBefore);
  });
});
