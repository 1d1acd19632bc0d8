// The identity service on loopback, as a proxy will meet it: `mesh identity
// init` makes the CA, `mesh identity token` the workload's token, the service
// starts on port 0, and a proxy-like client makes its key and CSR in memory and
// certifies over HTTP/2 TLS, verifying the service against the trust anchor.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createCsr, createTrustAnchor, loadSigner, tlsKeyPem } from '../ca/index.js';
import { ApiClientError, createApiServer, postJson } from '../shared/api.js';
import { certifyOnce } from '../controller/identity/client.js';
import { CERTIFY_PATH, startIdentityService, type IdentityService } from '../controller/identity/index.js';
import { issueServerCert } from '../controller/identity/server-cert.js';
import type { Out } from '../cli/command.js';
import { runControllerIdentity } from '../cli/controller-identity.js';
import { runIdentityInit } from '../cli/identity-init.js';
import { runIdentityToken } from '../cli/identity-token.js';
import { Log } from '../shared/log.js';

const TD = 'cluster.local';
const WEB = `web.emojivoto.serviceaccount.identity.${TD}`;
const DB = `db.emojivoto.serviceaccount.identity.${TD}`;
const HOUR = 3_600_000;

function capture(): Out & { out: string; err: string } {
  const c = { out: '', err: '', stdout: (t: string) => void (c.out += t), stderr: (t: string) => void (c.err += t) };
  return c;
}

/** `mesh identity token`'s logic, at a chosen "now". */
async function token(dir: string, serviceAccount: string, now = new Date(), ttlMs = 720 * HOUR): Promise<string> {
  const c = capture();
  assert.equal(await runIdentityToken({ namespace: 'emojivoto', serviceAccount, dir, ttlMs }, { now: () => now }, c), 0, c.err);
  return c.out.trim();
}

/** A CSR asking for two names: what ca/ never makes, built with pkijs directly. */
async function twoSanCsr(names: [string, string]): Promise<Uint8Array> {
  const engine = new pkijs.CryptoEngine({ name: 'test', crypto: webcrypto });
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const csr = new pkijs.CertificationRequest();
  csr.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: names[0] }) }));
  await csr.subjectPublicKeyInfo.importKey(keys.publicKey, engine);
  const san = new pkijs.GeneralNames({ names: names.map((value) => new pkijs.GeneralName({ type: 2, value })) });
  const extensions = new pkijs.Extensions({
    extensions: [new pkijs.Extension({ extnID: '2.5.29.17', critical: false, extnValue: san.toSchema().toBER(false) })],
  });
  csr.attributes = [new pkijs.Attribute({ type: '1.2.840.113549.1.9.14', values: [extensions.toSchema()] })];
  await csr.sign(keys.privateKey, 'SHA-256', engine);
  return new Uint8Array(csr.toSchema().toBER(false));
}

/** A raw HTTP/2 request, for what postJson would never send. */
async function raw(service: IdentityService, anchorPem: string, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(service.url, { ca: anchorPem, servername: service.serverName });
  try {
    const req = session.request(headers);
    req.end(body);
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    const status = await new Promise<number>((resolve, reject) => {
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
    });
    await new Promise((resolve) => req.on('end', resolve));
    return { status, body: text };
  } finally {
    session.close();
  }
}

describe('identity service end to end (loopback)', () => {
  let dir: string;
  let anchorPem: string;
  let service: IdentityService;
  const logs: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-identity-e2e-'));
    const init = capture();
    assert.equal(await runIdentityInit(
      { trustDomain: TD, dir, anchorValidityMs: 87_600 * HOUR, issuerValidityMs: 8_760 * HOUR, output: 'pem', force: false, rotateTokenKey: false, namespace: 'mesh' },
      { now: () => new Date() },
      init,
    ), 0, init.err);
    anchorPem = await readFile(join(dir, 'ca.crt'), 'utf8');
    const log = new Log('info', (line) => void logs.push(line));
    service = await startIdentityService({ dir, host: '127.0.0.1', port: 0, trustDomain: TD, leafLifetimeMs: 24 * HOUR, tokenReviewer: 'mesh' }, { log });
  });

  after(async () => {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });

  const certify = (identity: string, tokenText: string, csrDer: Uint8Array) =>
    certifyOnce({ url: service.url, trustAnchorPem: anchorPem, serverName: service.serverName, identity, token: tokenText, csrDer });

  it('certifies a proxy: a chain to the anchor with exactly its name, for 24 h', async () => {
    const csr = await createCsr(WEB);
    const before = Date.now();
    const got = await certify(WEB, await token(dir, 'web'), csr.der);

    const [leaf, issuer, ...extra] = got.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).map((pem) => new X509Certificate(pem));
    assert.equal(extra.length, 0, 'leaf and issuer; the anchor is the peer’s own');
    const anchor = new X509Certificate(anchorPem);
    assert.ok(leaf!.checkIssued(issuer!) && leaf!.verify(issuer!.publicKey), 'leaf signed by the issuer');
    assert.ok(issuer!.checkIssued(anchor) && issuer!.verify(anchor.publicKey), 'issuer signed by the anchor');
    assert.equal(leaf!.subjectAltName, `DNS:${WEB}`);
    assert.equal(leaf!.ca, false);
    const life = Date.parse(leaf!.validTo) - Date.parse(leaf!.validFrom);
    assert.ok(Math.abs(life - (24 * HOUR + 20_000)) <= 2_000, `lives ${life} ms: 24 h plus 20 s of skew`);
    assert.ok(Math.abs(got.notAfter.getTime() - (before + 24 * HOUR)) < 5_000);
    assert.equal(got.notAfter.getTime(), Date.parse(leaf!.validTo));
    // What the proxy does next: a TLS context from the chain and its in-memory key.
    assert.doesNotThrow(() => tls.createSecureContext({ cert: got.chainPem, key: tlsKeyPem(csr.privateKey) }));
    assert.ok(logs.some((l) => l.includes(`INFO certified identity=${WEB} `)), logs.join(''));
  });

  it('takes the CSR as PEM too', async () => {
    const csr = await createCsr(WEB);
    const answer = (await postJson({
      url: service.url,
      path: CERTIFY_PATH,
      body: { identity: WEB, token: await token(dir, 'web'), csr: csr.pem },
      trustAnchorPem: anchorPem,
      serverName: service.serverName,
    })) as { chainPem: string };
    assert.equal(new X509Certificate(answer.chainPem).subjectAltName, `DNS:${WEB}`);
  });

  describe('refusals: status, code, and one log line each', () => {
    const cases: Array<{ what: string; status: number; code: string; message: RegExp; body: () => Promise<Record<string, unknown>> }> = [
      {
        what: 'a token not signed by the control plane',
        status: 403,
        code: 'MESH_CA_TOKEN_SIGNATURE',
        message: /signature does not verify/,
        body: async () => {
          const other = await mkdtemp(join(tmpdir(), 'mesh-other-'));
          try {
            const c = capture();
            const o = { trustDomain: TD, dir: other, anchorValidityMs: HOUR, issuerValidityMs: HOUR, output: 'pem' as const, force: false, rotateTokenKey: false, namespace: 'mesh' };
            assert.equal(await runIdentityInit(o, { now: () => new Date() }, c), 0, c.err);
            return { identity: WEB, token: await token(other, 'web'), csr: b64((await createCsr(WEB)).der) };
          } finally {
            await rm(other, { recursive: true, force: true });
          }
        },
      },
      {
        what: 'an expired token',
        status: 403,
        code: 'MESH_CA_TOKEN_EXPIRED',
        message: /expired at/,
        body: async () => ({ identity: WEB, token: await token(dir, 'web', new Date(Date.now() - 2 * HOUR), HOUR), csr: b64((await createCsr(WEB)).der) }),
      },
      {
        what: 'a token for another account',
        status: 403,
        code: 'MESH_CA_IDENTITY_MISMATCH',
        message: /the token is for system:serviceaccount:emojivoto:db .*not for "web\./,
        body: async () => ({ identity: WEB, token: await token(dir, 'db'), csr: b64((await createCsr(WEB)).der) }),
      },
      {
        what: 'a CSR asking for two names',
        status: 403,
        code: 'MESH_CA_CSR_SANS',
        message: /exactly one DNS SAN.*DNS:web\..*DNS:db\./,
        body: async () => ({ identity: WEB, token: await token(dir, 'web'), csr: b64(await twoSanCsr([WEB, DB])) }),
      },
      {
        what: 'a CSR whose signature does not verify',
        status: 403,
        code: 'MESH_CA_CSR_SIGNATURE',
        message: /CSR signature does not verify/,
        body: async () => {
          const der = (await createCsr(WEB)).der.slice();
          der[der.length - 1] ^= 0x01;
          return { identity: WEB, token: await token(dir, 'web'), csr: b64(der) };
        },
      },
      {
        what: "a CSR for a name other than the token's account",
        status: 403,
        code: 'MESH_CA_IDENTITY_MISMATCH',
        message: /CSR asks for "db\..*" but the caller is "web\./,
        body: async () => ({ identity: WEB, token: await token(dir, 'web'), csr: b64((await createCsr(DB)).der) }),
      },
      {
        what: 'a name in another trust domain',
        status: 403,
        code: 'MESH_CA_IDENTITY_MISMATCH',
        message: /not in this trust domain/,
        body: async () => {
          const elsewhere = 'web.emojivoto.serviceaccount.identity.example.org';
          return { identity: elsewhere, token: await token(dir, 'web'), csr: b64((await createCsr(elsewhere)).der) };
        },
      },
      {
        what: 'an identity that is not an identity name',
        status: 400,
        code: 'MESH_CA_BAD_IDENTITY',
        message: /is not an identity name/,
        body: async () => ({ identity: 'web.emojivoto.svc.cluster.local', token: await token(dir, 'web'), csr: b64((await createCsr(WEB)).der) }),
      },
      {
        what: 'a CSR that is not base64',
        status: 400,
        code: 'MESH_API_MALFORMED',
        message: /neither PEM nor base64 DER/,
        body: async () => ({ identity: WEB, token: await token(dir, 'web'), csr: 'not a csr!' }),
      },
      {
        what: 'a CSR that is not PKCS#10',
        status: 400,
        code: 'MESH_CA_BAD_CSR',
        message: /not a readable PKCS#10 request/,
        body: async () => ({ identity: WEB, token: await token(dir, 'web'), csr: b64(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])) }),
      },
      {
        what: 'a missing token',
        status: 400,
        code: 'MESH_API_MALFORMED',
        message: /"token" must be a non-empty string/,
        body: async () => ({ identity: WEB, csr: b64((await createCsr(WEB)).der) }),
      },
    ];

    for (const c of cases) {
      it(`refuses ${c.what}: ${c.status} ${c.code}`, async () => {
        const body = await c.body();
        const logged = logs.length;
        await assert.rejects(
          postJson({ url: service.url, path: CERTIFY_PATH, body, trustAnchorPem: anchorPem, serverName: service.serverName }),
          (e: unknown) => {
            assert.ok(e instanceof ApiClientError, String(e));
            assert.equal(e.code, 'MESH_API_REFUSED');
            assert.equal(e.status, c.status);
            assert.equal(e.serverCode, c.code);
            assert.match(e.message, c.message);
            return true;
          },
        );
        const lines = logs.slice(logged);
        assert.equal(lines.length, 1, lines.join(''));
        const identity = typeof body.identity === 'string' ? body.identity : '-';
        assert.match(lines[0]!, new RegExp(`^\\S+ WARN refused identity=${identity.replace(/\./g, '\\.')} code=${c.code} reason="[^\\n]+" remote=127\\.0\\.0\\.1\\n$`));
      });
    }

    it('refuses bodies that are not JSON, or too large, before reading them as requests', async () => {
      const post = { ':method': 'POST', ':path': CERTIFY_PATH };
      const notJson = await raw(service, anchorPem, { ...post, 'content-type': 'application/json' }, '{"identity":');
      assert.equal(notJson.status, 400);
      assert.equal(JSON.parse(notJson.body).code, 'MESH_API_MALFORMED');
      const wrongType = await raw(service, anchorPem, { ...post, 'content-type': 'text/plain' }, '{}');
      assert.deepEqual([wrongType.status, JSON.parse(wrongType.body).code], [415, 'MESH_API_CONTENT_TYPE']);
      const huge = await raw(service, anchorPem, { ...post, 'content-type': 'application/json' }, JSON.stringify({ token: 'x'.repeat(100_000) }));
      assert.deepEqual([huge.status, JSON.parse(huge.body).code], [413, 'MESH_API_TOO_LARGE']);
      const get = await raw(service, anchorPem, { ':method': 'GET', ':path': CERTIFY_PATH });
      assert.deepEqual([get.status, JSON.parse(get.body).code], [405, 'MESH_API_METHOD']);
      assert.ok(logs.some((l) => / WARN refused identity=- code=MESH_API_CONTENT_TYPE /.test(l)));
    });
  });

  it('answers /live and /ready', async () => {
    assert.deepEqual(await raw(service, anchorPem, { ':path': '/live' }), { status: 200, body: 'live\n' });
    assert.deepEqual(await raw(service, anchorPem, { ':path': '/ready' }), { status: 200, body: 'ready\n' });
  });

  describe('the client', () => {
    it('refuses a server whose certificate chains to another anchor, or carries another name', async () => {
      const stranger = await createTrustAnchor({ trustDomain: TD });
      const csr = await createCsr(WEB);
      const tokenText = await token(dir, 'web');
      const served = logs.length;
      await assert.rejects(
        certifyOnce({ url: service.url, trustAnchorPem: stranger.certPem, serverName: service.serverName, identity: WEB, token: tokenText, csrDer: csr.der }),
        (e: unknown) => e instanceof ApiClientError && e.code === 'MESH_API_SERVER_UNTRUSTED' && /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(e.message),
      );
      await assert.rejects(
        certifyOnce({ url: service.url, trustAnchorPem: anchorPem, serverName: `identity.${TD}`, identity: WEB, token: tokenText, csrDer: csr.der }),
        (e: unknown) => e instanceof ApiClientError && e.code === 'MESH_API_SERVER_UNTRUSTED' && /ERR_TLS_CERT_ALTNAME_INVALID/.test(e.message),
      );
      assert.equal(logs.length, served, 'no request reached the service');
    });

    it('reports an unreachable service', async () => {
      await assert.rejects(
        certifyOnce({ url: 'https://127.0.0.1:1', trustAnchorPem: anchorPem, serverName: service.serverName, identity: WEB, token: 'x', csrDer: new Uint8Array() }),
        (e: unknown) => e instanceof ApiClientError && e.code === 'MESH_API_UNREACHABLE' && /ECONNREFUSED/.test(e.message),
      );
    });

    it('refuses an answer that is not a chain for its name and key', async () => {
      const issuer = await loadSigner({ certPem: await readFile(join(dir, 'issuer.crt'), 'utf8'), keyPem: await readFile(join(dir, 'issuer.key'), 'utf8') });
      const cert = await issueServerCert(issuer, service.serverName, HOUR, new Date());
      const someoneElse = await createCsr(DB);
      let answer: unknown = { chainPem: 'nope', notAfter: new Date().toISOString() };
      const liar = createApiServer({
        certPem: cert.chainPem,
        keyPem: cert.keyPem,
        endpoints: [{ path: CERTIFY_PATH, handle: async () => answer }],
        ready: () => true,
      });
      const { port } = await liar.listen('127.0.0.1', 0);
      try {
        const ask = async () =>
          certifyOnce({ url: `https://127.0.0.1:${port}`, trustAnchorPem: anchorPem, serverName: service.serverName, identity: WEB, token: 't', csrDer: (await createCsr(WEB)).der });
        const bad = (message: RegExp) => (e: unknown) => e instanceof ApiClientError && e.code === 'MESH_API_BAD_RESPONSE' && message.test(e.message);
        await assert.rejects(ask(), bad(/not a PEM certificate chain/));
        // A real chain, for someone else.
        answer = await certify(DB, await token(dir, 'db'), someoneElse.der).then((c) => ({ chainPem: c.chainPem, notAfter: c.notAfter.toISOString() }));
        await assert.rejects(ask(), bad(/certificate is for DNS:db\./));
        answer = { chainPem: 42 };
        await assert.rejects(ask(), bad(/lacks chainPem or notAfter/));
      } finally {
        await liar.close();
      }
    });
  });

  it('warns at start-up when serving another trust domain than the issuer was made for', async () => {
    const lines: string[] = [];
    const other = await startIdentityService(
      { dir, host: '127.0.0.1', port: 0, trustDomain: 'example.org', leafLifetimeMs: HOUR, tokenReviewer: 'mesh' },
      { log: new Log('info', (l) => void lines.push(l)) },
    );
    await other.close();
    assert.equal(other.serverName, 'mesh-identity.mesh.serviceaccount.identity.example.org');
    assert.ok(lines.some((l) => / WARN issuer warning="the issuer was made for trust domain cluster\.local, but this service issues names in example\.org/.test(l)), lines.join(''));
  });

  it('mesh-controller identity: a directory without a CA is one line and exit 2', async () => {
    const c = capture();
    const code = await runControllerIdentity(
      { dir: join(dir, 'missing'), listen: { host: '127.0.0.1', port: 0 }, leafLifetimeMs: HOUR, trustDomain: TD, tokenReviewer: 'mesh' },
      { log: new Log('error', () => {}), stop: Promise.resolve() },
      c,
    );
    assert.equal(code, 2);
    assert.match(c.err, /^mesh-controller identity: cannot read .*missing\/ca\.crt \(ENOENT\): run `mesh identity init --out .*` first \[MESH_IDENTITY_FILES\]\n$/);
  });
});

function b64(der: Uint8Array): string {
  return Buffer.from(der).toString('base64');
}
