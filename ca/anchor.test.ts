import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createIssuer, createTrustAnchor } from './anchor.js';
import { certificatesFromPem } from './pem.js';
import { OID, findExtension, parseCertificate } from './pkix.js';
import { DAY, T0, makeCa, rejectsWith } from './fixtures.js';

function parsed(pem: string): pkijs.Certificate {
  return parseCertificate(certificatesFromPem(pem, 'test')[0]!);
}

function keyIdOf(cert: pkijs.Certificate, oid: string): string {
  const v = findExtension(cert, oid)?.parsedValue;
  if (v instanceof asn1js.OctetString) return Buffer.from(v.valueBlock.valueHexView).toString('hex');
  if (v instanceof pkijs.AuthorityKeyIdentifier && v.keyIdentifier) return Buffer.from(v.keyIdentifier.valueBlock.valueHexView).toString('hex');
  return '';
}

describe('trust anchor and issuer', () => {
  it('makes a self-signed P-256 root with critical CA constraints', async () => {
    const anchor = await createTrustAnchor({ trustDomain: 'prod.example.com', now: T0 });
    const x = new X509Certificate(anchor.certPem);
    assert.equal(x.subject, 'CN=root.prod.example.com');
    assert.equal(x.issuer, x.subject);
    assert.equal(x.ca, true);
    assert.ok(x.checkIssued(x) && x.verify(x.publicKey));
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    // Backdated five minutes, whole seconds, ten years.
    assert.equal(new Date(x.validFrom).toISOString(), '2030-06-01T11:55:00.000Z');
    assert.equal(new Date(x.validTo).getTime(), new Date('2030-06-01T12:00:00Z').getTime() + 3650 * DAY);
    assert.match(anchor.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const pub = createPublicKey(createPrivateKey(anchor.keyPem)).export({ type: 'spki', format: 'der' });
    assert.ok(pub.equals(x.publicKey.export({ type: 'spki', format: 'der' })));

    const cert = parsed(anchor.certPem);
    const bc = findExtension(cert, OID.basicConstraints);
    assert.equal(bc?.critical, true);
    assert.ok(bc?.parsedValue instanceof pkijs.BasicConstraints && bc.parsedValue.cA && bc.parsedValue.pathLenConstraint === undefined);
    const ku = findExtension(cert, OID.keyUsage);
    assert.equal(ku?.critical, true);
    assert.ok(ku?.parsedValue instanceof asn1js.BitString);
    assert.deepEqual([...ku.parsedValue.valueBlock.valueHexView], [0x06]); // keyCertSign | cRLSign
    assert.equal(keyIdOf(cert, OID.subjectKeyId).length, 40);
  });

  it('signs an issuer with pathLen 0 and AKI = the anchor SKI', async () => {
    const { anchor, issuerPair } = await makeCa();
    const a = new X509Certificate(anchor.certPem);
    const i = new X509Certificate(issuerPair.certPem);
    assert.equal(i.subject, 'CN=identity.cluster.local');
    assert.equal(i.ca, true);
    assert.ok(i.checkIssued(a));
    assert.ok(i.verify(a.publicKey));
    assert.ok(!i.verify(i.publicKey));
    assert.equal(new Date(i.validTo).getTime(), new Date('2030-06-01T12:00:00Z').getTime() + 365 * DAY);
    const cert = parsed(issuerPair.certPem);
    const bc = findExtension(cert, OID.basicConstraints)?.parsedValue;
    assert.ok(bc instanceof pkijs.BasicConstraints && bc.cA && bc.pathLenConstraint === 0);
    assert.equal(keyIdOf(cert, OID.authorityKeyId), keyIdOf(parsed(anchor.certPem), OID.subjectKeyId));
    assert.notEqual(keyIdOf(cert, OID.subjectKeyId), keyIdOf(cert, OID.authorityKeyId));
  });

  it('never lets the issuer outlive the anchor', async () => {
    const anchor = await createTrustAnchor({ now: T0, validityDays: 30 });
    const issuer = await createIssuer(anchor, { now: new Date(T0.getTime() + 20 * DAY), validityDays: 365 });
    assert.equal(issuer.notAfter.getTime(), anchor.notAfter.getTime());
    assert.equal(new Date(new X509Certificate(issuer.certPem).validTo).getTime(), anchor.notAfter.getTime());
  });

  it('refuses an expired anchor and a key that is not the anchor’s', async () => {
    const anchor = await createTrustAnchor({ now: T0, validityDays: 1 });
    await rejectsWith(createIssuer(anchor, { now: new Date(T0.getTime() + 2 * DAY) }), 'MESH_CA_EXPIRED', /trust anchor expired/);
    const other = await createTrustAnchor({ now: T0 });
    await rejectsWith(createIssuer({ certPem: anchor.certPem, keyPem: other.keyPem }, { now: T0 }), 'MESH_CA_KEY_MISMATCH');
  });
});
