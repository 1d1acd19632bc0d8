import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createIssuer, createTrustAnchor } from './anchor.js';
import { createCsr } from './csr.js';
import { issueLeaf } from './issue.js';
import { toPem } from './pem.js';
import * as pkix from './pkix.js';
import { validateIssuer } from './validate.js';
import { DAY, T0, makeCa, makeLeaf, rejectsWith } from './fixtures.js';

const ID = 'web.default.serviceaccount.identity.cluster.local';

describe('bring your own issuer', () => {
  it('accepts a matching anchor, issuer and key, and can sign with them', async () => {
    const ca = await makeCa();
    const r = await validateIssuer({ anchorPem: ca.anchor.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: ca.issuerPair.keyPem, now: T0 });
    assert.equal(r.anchor.subject, 'CN=root.cluster.local');
    assert.deepEqual(r.warnings, []);
    const leaf = await issueLeaf({ issuer: r.issuer, csr: (await createCsr(ID)).der, identity: ID, now: T0 });
    assert.ok(leaf.chainPem.includes(ca.issuerPair.certPem.trim()));
  });

  it('accepts an SEC1 key (openssl, step) and an anchor bundle during rotation', async () => {
    const ca = await makeCa();
    const old = await createTrustAnchor({ now: T0 });
    const sec1 = createPrivateKey(ca.issuerPair.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    const r = await validateIssuer({ anchorPem: old.certPem + ca.anchor.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: sec1, now: T0 });
    assert.equal(r.anchor.fingerprint256, new X509Certificate(ca.anchor.certPem).fingerprint256);
  });

  it('refuses an issuer outside its validity', async () => {
    const ca = await makeCa(T0, 30);
    const input = { anchorPem: ca.anchor.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: ca.issuerPair.keyPem };
    await rejectsWith(validateIssuer({ ...input, now: new Date(T0.getTime() + 31 * DAY) }), 'MESH_CA_EXPIRED', /issuer certificate expired at 2030-07-01T12:00:00.000Z/);
    await rejectsWith(validateIssuer({ ...input, now: new Date(T0.getTime() - DAY) }), 'MESH_CA_NOT_YET_VALID', /clock/);
  });

  it('refuses an issuer signed by another anchor', async () => {
    const ca = await makeCa();
    const stranger = await createTrustAnchor({ trustDomain: 'other.example', now: T0 });
    await rejectsWith(
      validateIssuer({ anchorPem: stranger.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: ca.issuerPair.keyPem, now: T0 }),
      'MESH_CA_CHAIN_BROKEN',
      /issued by CN=root\.cluster\.local.*not signed by the trust anchor \(CN=root\.other\.example\)/,
    );
    // Same name, different key: only the signature tells them apart.
    const twin = await createTrustAnchor({ now: T0 });
    await rejectsWith(
      validateIssuer({ anchorPem: twin.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: ca.issuerPair.keyPem, now: T0 }),
      'MESH_CA_CHAIN_BROKEN',
    );
  });

  it('refuses a key that is not the issuer’s, or not P-256', async () => {
    const ca = await makeCa();
    const base = { anchorPem: ca.anchor.certPem, issuerCertPem: ca.issuerPair.certPem, now: T0 };
    await rejectsWith(validateIssuer({ ...base, issuerKeyPem: ca.anchor.keyPem }), 'MESH_CA_KEY_MISMATCH', /does not belong to the issuer certificate \(CN=identity\.cluster\.local\)/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await rejectsWith(validateIssuer({ ...base, issuerKeyPem: p384 }), 'MESH_CA_UNSUPPORTED_KEY', /EC secp384r1.*P-256/);
  });

  it('refuses a leaf posing as an issuer, and an anchor that forbids intermediates', async () => {
    const ca = await makeCa();
    const leaf = await makeLeaf(ca, ID);
    await rejectsWith(
      validateIssuer({ anchorPem: ca.anchor.certPem, issuerCertPem: leaf.certPem, issuerKeyPem: leaf.keyPem, now: T0 }),
      'MESH_CA_NOT_A_CA',
      /CA:TRUE/,
    );
    // A root with pathLen 0 may sign leaves only; an issuer under it is refused by every verifier.
    const keys = await pkix.generateKeyPair(true);
    const spki = await pkix.spkiOf(keys.publicKey);
    const name = pkix.commonName('strict root');
    const der = await pkix.signCertificate(
      {
        issuer: name,
        subject: name,
        spki,
        notBefore: T0,
        notAfter: new Date(T0.getTime() + 30 * DAY),
        extensions: [pkix.basicConstraints(true, 0), pkix.keyUsage([pkix.KeyUsageBit.keyCertSign]), pkix.subjectKeyId(pkix.keyIdentifier(spki))],
      },
      keys.privateKey,
    );
    const strict = { certPem: toPem('CERTIFICATE', der), keyPem: await pkix.exportPkcs8Pem(keys.privateKey) };
    const issuer = await createIssuer(strict, { now: T0 });
    await rejectsWith(
      validateIssuer({ anchorPem: strict.certPem, issuerCertPem: issuer.certPem, issuerKeyPem: issuer.keyPem, now: T0 }),
      'MESH_CA_NOT_A_CA',
      /pathLen 0/,
    );
  });

  it('refuses unreadable input, naming which', async () => {
    const ca = await makeCa();
    const good = { anchorPem: ca.anchor.certPem, issuerCertPem: ca.issuerPair.certPem, issuerKeyPem: ca.issuerPair.keyPem, now: T0 };
    await rejectsWith(validateIssuer({ ...good, anchorPem: 'ca.crt' }), 'MESH_CA_BAD_PEM', /trust anchor: no PEM "CERTIFICATE" block/);
    const corrupt = ca.issuerPair.certPem.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    await rejectsWith(validateIssuer({ ...good, issuerCertPem: corrupt }), 'MESH_CA_BAD_PEM', /issuer certificate is not a readable X\.509/);
    await rejectsWith(validateIssuer({ ...good, issuerKeyPem: 'nope' }), 'MESH_CA_BAD_PEM', /issuer key/);
  });
});
