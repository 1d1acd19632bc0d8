import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildCsr, createCsr } from './csr.js';
import { issueLeaf } from './issue.js';
import { OID, findExtension, generateKeyPair, parseCertificate, subtle } from './pkix.js';
import { DAY, HOUR, T0, makeCa, rejectsWith } from './fixtures.js';

const ID = 'web.default.serviceaccount.identity.cluster.local';
const SECOND = 1000;

describe('leaf certificates', () => {
  it('chain anchor → issuer → leaf as OpenSSL sees them', async () => {
    const ca = await makeCa();
    const csr = await createCsr(ID);
    const leaf = await issueLeaf({ issuer: ca.issuer, csr: csr.der, identity: ID, now: T0 });
    const [a, i, l] = [ca.anchor.certPem, ca.issuerPair.certPem, leaf.certPem].map((p) => new X509Certificate(p)) as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];
    assert.ok(l.checkIssued(i) && l.verify(i.publicKey));
    assert.ok(i.checkIssued(a) && i.verify(a.publicKey));
    assert.ok(!l.verify(a.publicKey));
    assert.equal(l.ca, false);
    assert.equal(l.subject, `CN=${ID}`);
    assert.equal(l.subjectAltName, `DNS:${ID}`);
    assert.equal(l.checkHost(ID), ID);
    assert.deepEqual([...(l.keyUsage ?? [])].sort(), [OID.serverAuth, OID.clientAuth].sort());
    // notBefore = now − 20 s, notAfter = now + 24 h, in whole seconds.
    const whole = new Date('2030-06-01T12:00:00Z').getTime();
    assert.equal(new Date(l.validFrom).getTime(), whole - 20 * SECOND);
    assert.equal(new Date(l.validTo).getTime(), whole + DAY);
    assert.equal(leaf.notBefore.getTime(), whole - 20 * SECOND);
    assert.equal(leaf.notAfter.getTime(), whole + DAY);
    assert.equal(leaf.clampedToIssuer, false);
    // The key certified is the requester's.
    const requested = Buffer.from(await subtle.exportKey('spki', csr.publicKey));
    assert.ok(requested.equals(l.publicKey.export({ type: 'spki', format: 'der' })));
    // Random, positive, at most 20 bytes.
    assert.match(l.serialNumber, /^[0-7][0-9A-F]{1,39}$/);
    const again = await issueLeaf({ issuer: ca.issuer, csr: csr.der, identity: ID, now: T0 });
    assert.notEqual(new X509Certificate(again.certPem).serialNumber, l.serialNumber);
    assert.equal(leaf.chainPem, leaf.certPem + ca.issuer.certPem);
  });

  it('has the extensions RFC 5280 asks of an end-entity', async () => {
    const ca = await makeCa();
    const leaf = await issueLeaf({ issuer: ca.issuer, csr: (await createCsr(ID)).pem, identity: ID, now: T0 });
    const cert = parseCertificate(leaf.certDer);
    const ku = findExtension(cert, OID.keyUsage);
    assert.equal(ku?.critical, true);
    assert.ok(ku?.parsedValue instanceof asn1js.BitString);
    assert.deepEqual([...ku.parsedValue.valueBlock.valueHexView], [0x80]); // digitalSignature only
    const bc = findExtension(cert, OID.basicConstraints);
    assert.ok(bc?.critical && bc.parsedValue instanceof pkijs.BasicConstraints && !bc.parsedValue.cA);
    const aki = findExtension(cert, OID.authorityKeyId)?.parsedValue;
    assert.ok(aki instanceof pkijs.AuthorityKeyIdentifier && aki.keyIdentifier);
    assert.deepEqual(new Uint8Array(aki.keyIdentifier.valueBlock.valueHexView), ca.issuer.keyId);
    assert.equal(findExtension(cert, OID.subjectAltName)?.critical, false);
  });

  it('stops at the issuer’s expiry and says so', async () => {
    const ca = await makeCa(T0, 1);
    const late = new Date(ca.issuer.notAfter.getTime() - HOUR);
    const leaf = await issueLeaf({ issuer: ca.issuer, csr: (await createCsr(ID)).der, identity: ID, now: late });
    assert.equal(leaf.clampedToIssuer, true);
    assert.equal(leaf.notAfter.getTime(), ca.issuer.notAfter.getTime());
    assert.equal(new Date(new X509Certificate(leaf.certPem).validTo).getTime(), ca.issuer.notAfter.getTime());
  });

  it('gives a long identity an empty subject and a critical SAN', async () => {
    const ca = await makeCa();
    const long = `${'a'.repeat(40)}.${'b'.repeat(40)}.serviceaccount.identity.cluster.local`;
    const leaf = await issueLeaf({ issuer: ca.issuer, csr: (await createCsr(long)).der, identity: long, now: T0 });
    const x = new X509Certificate(leaf.certPem);
    assert.ok(!x.subject, `subject should be empty, is ${x.subject}`);
    assert.equal(x.subjectAltName, `DNS:${long}`);
    assert.equal(findExtension(parseCertificate(leaf.certDer), OID.subjectAltName)?.critical, true);
  });

  it('refuses a CSR for another name, two names, a bad signature, an expired issuer', async () => {
    const ca = await makeCa(T0, 1);
    const other = 'db.default.serviceaccount.identity.cluster.local';
    const issue = (csr: Uint8Array | string, now = T0) => issueLeaf({ issuer: ca.issuer, csr, identity: ID, now });
    await rejectsWith(issue((await createCsr(other)).der), 'MESH_CA_IDENTITY_MISMATCH', /asks for "db\.default.*" but the caller is "web\.default/);
    const keys = await generateKeyPair(false);
    await rejectsWith(issue(await buildCsr(keys, [ID, other])), 'MESH_CA_CSR_SANS');
    const der = await buildCsr(keys, [ID]);
    der[der.length - 2]! ^= 0xff;
    await rejectsWith(issue(der), 'MESH_CA_CSR_SIGNATURE');
    await rejectsWith(issue((await createCsr(ID)).der, new Date(T0.getTime() + 2 * DAY)), 'MESH_CA_EXPIRED', /issuer certificate expired/);
    await rejectsWith(issueLeaf({ issuer: ca.issuer, csr: (await createCsr(ID)).der, identity: 'web', now: T0 }), 'MESH_CA_BAD_IDENTITY');
  });
});
