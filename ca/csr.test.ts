import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as pkijs from 'pkijs';
import { buildCsr, createCsr, inspectCsr } from './csr.js';
import { OID, generateKeyPair, subtle, type CryptoKey } from './pkix.js';
import { rejectsWith } from './fixtures.js';

const ID = 'web.default.serviceaccount.identity.cluster.local';

async function spkiHex(key: CryptoKey): Promise<string> {
  return Buffer.from(await subtle.exportKey('spki', key)).toString('hex');
}

describe('certificate signing requests', () => {
  it('carries the identity as its only SAN and verifies, as PEM or DER', async () => {
    const csr = await createCsr(ID);
    assert.equal(csr.privateKey.extractable, false);
    assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    for (const input of [csr.pem, csr.der]) {
      const seen = await inspectCsr(input);
      assert.equal(seen.dnsName, ID);
      assert.equal(await spkiHex(seen.publicKey), await spkiHex(csr.publicKey));
    }
    const parsed = pkijs.CertificationRequest.fromBER(csr.der);
    assert.equal(parsed.subject.typesAndValues[0]?.value.valueBlock.value, ID);
  });

  it('puts a name too long for a CN only in a critical SAN', async () => {
    const long = `${'a'.repeat(40)}.${'b'.repeat(40)}.serviceaccount.identity.cluster.local`;
    const csr = await createCsr(long);
    assert.equal((await inspectCsr(csr.der)).dnsName, long);
    const parsed = pkijs.CertificationRequest.fromBER(csr.der);
    assert.equal(parsed.subject.typesAndValues.length, 0);
    const exts = new pkijs.Extensions({ schema: parsed.attributes![0]!.values[0] });
    assert.equal(exts.extensions.find((e) => e.extnID === OID.subjectAltName)?.critical, true);
  });

  it('refuses two SANs, and a signature with one byte flipped', async () => {
    const keys = await generateKeyPair(false);
    await rejectsWith(
      inspectCsr(await buildCsr(keys, [ID, 'db.default.serviceaccount.identity.cluster.local'])),
      'MESH_CA_CSR_SANS',
      /exactly one DNS SAN.*DNS:web\..*, DNS:db\./,
    );
    const der = await buildCsr(keys, [ID]);
    await inspectCsr(der);
    const flipped = der.slice();
    flipped[flipped.length - 1]! ^= 0x01; // last byte of the signature's s
    await rejectsWith(inspectCsr(flipped), 'MESH_CA_CSR_SIGNATURE');
  });

  it('refuses junk, certificates and foreign names', async () => {
    await rejectsWith(inspectCsr(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])), 'MESH_CA_BAD_CSR');
    await rejectsWith(inspectCsr('hello'), 'MESH_CA_BAD_CSR', /CERTIFICATE REQUEST/);
    await rejectsWith(inspectCsr(new Uint8Array(20_000)), 'MESH_CA_BAD_CSR', /refusing/);
    await assert.rejects(createCsr('web.default.svc.cluster.local'), /not an identity name/);
  });
});
