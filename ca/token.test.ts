import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DAY, T0, rejectsWith } from './fixtures.js';
import { ECDSA_SHA256, generateKeyPair, subtle, type CryptoKey } from './pkix.js';
import { TOKEN_AUDIENCE, createTokenKey, importTokenSigningKey, importTokenVerifyKey, signToken, verifyToken } from './token.js';

function decode(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Signs arbitrary header and claims: for tokens signToken would never make. */
async function forge(key: CryptoKey, header: object, claims: object): Promise<string> {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = await subtle.sign(ECDSA_SHA256, key, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

describe('service-account tokens', () => {
  it('signs the claims the identity service expects, and verifies them', async () => {
    const keys = await generateKeyPair(false);
    const token = await signToken({ privateKey: keys.privateKey, namespace: 'default', serviceAccount: 'web', ttlMs: DAY, now: T0 });
    const [head, body, sig] = token.split('.') as [string, string, string];
    assert.deepEqual(decode(head), { alg: 'ES256', typ: 'JWT' });
    const iat = Math.floor(T0.getTime() / 1000);
    assert.deepEqual(decode(body), { iss: 'mesh', sub: 'system:serviceaccount:default:web', aud: 'identity.mesh.io', iat, exp: iat + 86_400 });
    assert.equal(Buffer.from(sig, 'base64url').length, 64);
    const v = await verifyToken(token, { publicKey: keys.publicKey, now: new Date(T0.getTime() + DAY - 60_000) });
    assert.deepEqual(v, { namespace: 'default', serviceAccount: 'web', subject: 'system:serviceaccount:default:web', expiresAt: new Date((iat + 86_400) * 1000) });
  });

  it('round-trips its keys through PEM', async () => {
    const pem = await createTokenKey();
    assert.match(pem.privateKeyPem, /BEGIN PRIVATE KEY/);
    assert.match(pem.publicKeyPem, /BEGIN PUBLIC KEY/);
    const token = await signToken({ privateKey: await importTokenSigningKey(pem.privateKeyPem), namespace: 'ns', serviceAccount: 'sa', now: T0 });
    assert.equal((await verifyToken(token, { publicKey: await importTokenVerifyKey(pem.publicKeyPem), now: T0 })).serviceAccount, 'sa');
    await rejectsWith(importTokenVerifyKey(pem.privateKeyPem), 'MESH_CA_BAD_PEM');
  });

  it('refuses expired and future tokens, with 20 s of skew either way', async () => {
    const keys = await generateKeyPair(false);
    const token = await signToken({ privateKey: keys.privateKey, namespace: 'default', serviceAccount: 'web', ttlMs: DAY, now: T0 });
    const at = (ms: number) => verifyToken(token, { publicKey: keys.publicKey, now: new Date(T0.getTime() + ms) });
    await at(DAY + 10_000);
    await rejectsWith(at(DAY + 21_000), 'MESH_CA_TOKEN_EXPIRED', /expired at 2030-06-02T12:00:00.000Z/);
    await at(-10_000);
    await rejectsWith(at(-30_000), 'MESH_CA_TOKEN_NOT_YET_VALID');
  });

  it('refuses another audience and another issuer', async () => {
    const keys = await generateKeyPair(false);
    const other = await signToken({ privateKey: keys.privateKey, namespace: 'default', serviceAccount: 'web', audience: 'vault', now: T0 });
    await rejectsWith(verifyToken(other, { publicKey: keys.publicKey, now: T0 }), 'MESH_CA_TOKEN_AUDIENCE', /"vault"/);
    const ours = await signToken({ privateKey: keys.privateKey, namespace: 'default', serviceAccount: 'web', now: T0 });
    await rejectsWith(verifyToken(ours, { publicKey: keys.publicKey, audience: 'elsewhere', now: T0 }), 'MESH_CA_TOKEN_AUDIENCE');
    const iat = Math.floor(T0.getTime() / 1000);
    const claims = { sub: 'system:serviceaccount:default:web', aud: [TOKEN_AUDIENCE, 'x'], iat, exp: iat + 60 };
    assert.equal((await verifyToken(await forge(keys.privateKey, { alg: 'ES256' }, { ...claims, iss: 'mesh' }), { publicKey: keys.publicKey, now: T0 })).serviceAccount, 'web');
    await rejectsWith(verifyToken(await forge(keys.privateKey, { alg: 'ES256' }, { ...claims, iss: 'kubernetes' }), { publicKey: keys.publicKey, now: T0 }), 'MESH_CA_TOKEN_ISSUER');
  });

  it('refuses tampered claims and other signers, accepts any key of a rotation', async () => {
    const keys = await generateKeyPair(false);
    const stranger = await generateKeyPair(false);
    const token = await signToken({ privateKey: keys.privateKey, namespace: 'default', serviceAccount: 'web', now: T0 });
    const [head, body, sig] = token.split('.') as [string, string, string];
    const claims = decode(body);
    const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${sig}`;
    await rejectsWith(verifyToken(tampered, { publicKey: keys.publicKey, now: T0 }), 'MESH_CA_TOKEN_SIGNATURE');
    await rejectsWith(verifyToken(token, { publicKey: stranger.publicKey, now: T0 }), 'MESH_CA_TOKEN_SIGNATURE');
    const flipped = Buffer.from(sig, 'base64url');
    flipped[5]! ^= 1;
    const bySig = `${head}.${body}.${flipped.toString('base64url')}`;
    await rejectsWith(verifyToken(bySig, { publicKey: keys.publicKey, now: T0 }), 'MESH_CA_TOKEN_SIGNATURE');
    assert.equal((await verifyToken(token, { publicKey: [stranger.publicKey, keys.publicKey], now: T0 })).namespace, 'default');
  });

  it('refuses what is not an ES256 compact JWS', async () => {
    const keys = await generateKeyPair(false);
    const opts = { publicKey: keys.publicKey, now: T0 };
    const iat = Math.floor(T0.getTime() / 1000);
    const claims = { iss: 'mesh', sub: 'system:serviceaccount:default:web', aud: TOKEN_AUDIENCE, iat, exp: iat + 60 };
    for (const bad of ['', 'a.b', 'a.b.c.d', 'a.b.c', '..', 'x'.repeat(9000)]) {
      await rejectsWith(verifyToken(bad, opts), 'MESH_CA_TOKEN_MALFORMED');
    }
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.AA`;
    await rejectsWith(verifyToken(none, opts), 'MESH_CA_TOKEN_MALFORMED', /"none" is not ES256/);
    await rejectsWith(verifyToken(await forge(keys.privateKey, { alg: 'HS256' }, claims), opts), 'MESH_CA_TOKEN_MALFORMED');
    await rejectsWith(verifyToken(await forge(keys.privateKey, { alg: 'ES256' }, { ...claims, sub: 'alice' }), opts), 'MESH_CA_TOKEN_MALFORMED', /alice/);
    await rejectsWith(verifyToken(await forge(keys.privateKey, { alg: 'ES256' }, { ...claims, exp: 'soon' }), opts), 'MESH_CA_TOKEN_MALFORMED');
  });
});
