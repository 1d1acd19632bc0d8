import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { certify, meshTokenReviewer } from './certify.js';
import { createCsr } from './csr.js';
import { generateKeyPair } from './pkix.js';
import { signToken } from './token.js';
import { T0, makeCa, rejectsWith } from './fixtures.js';

describe('certify: token + CSR → leaf', () => {
  it('names the workload from its token and issues for that name only', async () => {
    const ca = await makeCa();
    const tokenKeys = await generateKeyPair(false);
    const ctx = { issuer: ca.issuer, trustDomain: 'cluster.local', reviewer: meshTokenReviewer({ publicKey: tokenKeys.publicKey }), now: T0 };
    const token = await signToken({ privateKey: tokenKeys.privateKey, namespace: 'emojivoto', serviceAccount: 'web', now: T0 });
    const web = 'web.emojivoto.serviceaccount.identity.cluster.local';

    const leaf = await certify({ token, csr: (await createCsr(web)).pem }, ctx);
    assert.equal(leaf.identity, web);
    assert.equal(new X509Certificate(leaf.certPem).subjectAltName, `DNS:${web}`);

    // A workload may not ask for another account's name…
    const voting = (await createCsr('voting.emojivoto.serviceaccount.identity.cluster.local')).pem;
    await rejectsWith(certify({ token, csr: voting }, ctx), 'MESH_CA_IDENTITY_MISMATCH');
    // …nor for its own in another trust domain.
    const elsewhere = (await createCsr('web.emojivoto.serviceaccount.identity.example.org')).pem;
    await rejectsWith(certify({ token, csr: elsewhere }, ctx), 'MESH_CA_IDENTITY_MISMATCH');
    // A token from anyone but the control plane gets nothing.
    const forged = await signToken({ privateKey: (await generateKeyPair(false)).privateKey, namespace: 'emojivoto', serviceAccount: 'web', now: T0 });
    await rejectsWith(certify({ token: forged, csr: (await createCsr(web)).pem }, ctx), 'MESH_CA_TOKEN_SIGNATURE');
  });
});
