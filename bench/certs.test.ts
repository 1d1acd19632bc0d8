import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { benchIdentity, writeBenchCerts, type BenchCerts } from './certs.js';

/** The certificates in a PEM file, in order. */
const chainOf = (file: string): X509Certificate[] =>
  (readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));

describe('writeBenchCerts', () => {
  let dir: string;
  let certs: BenchCerts;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-certs-'));
    certs = await writeBenchCerts(join(dir, 'tls'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names each side like a workload identity, leaf and issuer chained to the anchor', () => {
    const anchor = new X509Certificate(readFileSync(certs.anchor));
    for (const side of ['client', 'server'] as const) {
      const files = certs[side];
      assert.equal(files.name, `${side}.bench.serviceaccount.identity.cluster.local`);
      assert.equal(files.name, benchIdentity(side));
      const [leaf, issuer, ...rest] = chainOf(files.chain);
      assert.equal(rest.length, 0, 'leaf then issuer, no anchor');
      assert.equal(leaf!.subjectAltName, `DNS:${files.name}`);
      assert.ok(leaf!.checkIssued(issuer!) && leaf!.verify(issuer!.publicKey));
      assert.ok(issuer!.checkIssued(anchor) && issuer!.verify(anchor.publicKey));
      const key = createPrivateKey(readFileSync(files.key));
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(leaf!.checkPrivateKey(key));
      // HAProxy's crt file: the same chain, then the key.
      assert.equal(readFileSync(files.pem, 'utf8'), readFileSync(files.chain, 'utf8') + readFileSync(files.key, 'utf8'));
    }
  });

  it('are usable for mutual TLS by OpenSSL: each side verifies the other against the anchor and the name', async () => {
    const ca = readFileSync(certs.anchor);
    const server = tls.createServer({
      cert: readFileSync(certs.server.chain),
      key: readFileSync(certs.server.key),
      ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('secureConnection', (s) => s.end(s.getPeerX509Certificate()?.subjectAltName ?? 'none'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = tls.connect({
        port: (server.address() as AddressInfo).port,
        host: '127.0.0.1',
        servername: certs.server.name,
        cert: readFileSync(certs.client.chain),
        key: readFileSync(certs.client.key),
        ca,
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(certs.server.name, cert),
      });
      let said = '';
      socket.setEncoding('utf8').on('data', (d: string) => (said += d));
      await once(socket, 'end');
      assert.equal(said, `DNS:${certs.client.name}`, 'the server saw the client identity');
      socket.destroy();
    } finally {
      server.close();
    }
  });
});
