// The proxy's hand-written request, read back by the CA's pkijs reader and by
// OpenSSL: the same name, the same key, a valid self-signature.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import * as pkijs from 'pkijs';
import { inspectCsr } from './csr.js';
import { createWorkloadRequest, requestSpki } from './csr-der.js';
import { isCaError } from './errors.js';
import { subtle } from './pkix.js';

const ID = 'web.default.serviceaccount.identity.cluster.local';
const LONG = `${'a'.repeat(40)}.${'b'.repeat(40)}.serviceaccount.identity.cluster.local`;

/** `openssl req -verify` on the DER request: its text, or the failure. */
function opensslReads(der: Buffer): string {
  return execFileSync('openssl', ['req', '-inform', 'DER', '-verify', '-noout', '-text'], { input: der, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('workload certificate requests without pkijs', () => {
  it('the CA reads the identity as the only SAN, the CN, and the key the proxy holds', async () => {
    const r = await createWorkloadRequest(ID);
    const seen = await inspectCsr(r.der);
    assert.equal(seen.dnsName, ID);
    assert.deepEqual(Buffer.from(await subtle.exportKey('spki', seen.publicKey)), r.spkiDer);
    assert.deepEqual(requestSpki(r.der), r.spkiDer);
    const parsed = pkijs.CertificationRequest.fromBER(r.der);
    assert.equal(parsed.subject.typesAndValues[0]?.value.valueBlock.value, ID);
    // The PEM key is the private half of that public key.
    assert.deepEqual(createPublicKey(createPrivateKey(r.keyPem)).export({ type: 'spki', format: 'der' }), r.spkiDer);
  });

  it('OpenSSL verifies its signature and reads the same name', async () => {
    const text = opensslReads((await createWorkloadRequest(ID)).der);
    assert.match(text, new RegExp(`Subject: CN ?= ?${ID.replace(/\./g, '\\.')}`));
    assert.match(text, new RegExp(`DNS:${ID.replace(/\./g, '\\.')}`));
    assert.match(text, /ecdsa-with-SHA256/);
  });

  it('a name too long for a CN goes only into a critical SAN', async () => {
    const r = await createWorkloadRequest(LONG);
    assert.equal((await inspectCsr(r.der)).dnsName, LONG);
    assert.equal(pkijs.CertificationRequest.fromBER(r.der).subject.typesAndValues.length, 0);
    assert.match(opensslReads(r.der), /Subject Alternative Name: critical\s+DNS:a{40}\./);
  });

  it('a fresh key each time', async () => {
    assert.notDeepEqual((await createWorkloadRequest(ID)).spkiDer, (await createWorkloadRequest(ID)).spkiDer);
  });

  it('refuses a name that is no workload identity', async () => {
    await assert.rejects(createWorkloadRequest('Not A Name'), (e: unknown) => isCaError(e) && e.code === 'MESH_CA_BAD_IDENTITY');
  });

  it('requestSpki: every truncation and a flipped tag is MESH_CA_BAD_CSR, never a wrong key or another error', async () => {
    const r = await createWorkloadRequest(ID);
    for (let n = 0; n < r.der.length; n++) {
      let got: Buffer | undefined;
      try {
        got = requestSpki(r.der.subarray(0, n));
      } catch (e) {
        assert.ok(isCaError(e) && e.code === 'MESH_CA_BAD_CSR', `cut at ${n}: ${String(e)}`);
        continue;
      }
      // Cut inside the signature: the key is complete and is the right one.
      assert.deepEqual(got, r.spkiDer, `cut at ${n}`);
    }
    const flipped = Buffer.from(r.der);
    flipped[0] = 0x31;
    assert.throws(() => requestSpki(flipped), (e: unknown) => isCaError(e) && e.code === 'MESH_CA_BAD_CSR');
  });
});
