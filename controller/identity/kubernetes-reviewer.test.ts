// The `kubernetes` token reviewer against a fake kube-apiserver: real HTTPS on
// 127.0.0.1 with its own self-signed certificate, answering with the API
// objects in testdata/, and refusing (400) any request that is not the
// TokenReview a real API server expects, so a wrong request fails every test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { certify, createCsr, createIssuer, createTrustAnchor, isCaError, loadSigner, type TokenReviewer } from '../../ca/index.js';
import { ApiError } from '../../shared/api.js';
import { Log } from '../../shared/log.js';
import { certifyEndpoint } from './certify.js';
import { ApiClientError, certifyOnce } from './client.js';
import { startIdentityService } from './index.js';
import { findKubernetesCredentials, SERVICE_ACCOUNT_DIR, type FoundCredentials } from '../../shared/kubernetes/credentials.js';
import { kubernetesTokenReviewer } from './kubernetes-reviewer.js';

const PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const CONTROLLER_TOKEN = 'controller-token';
const WEB = 'web.emojivoto.serviceaccount.identity.cluster.local';
const VOTING = 'voting.emojivoto.serviceaccount.identity.cluster.local';
const testdata = (name: string): string => readFileSync(new URL(`../../../controller/identity/testdata/${name}`, import.meta.url), 'utf8');
const controllerBin = new URL('../../cli/mesh-controller.js', import.meta.url).pathname;

/** Workload tokens the fake API server knows, and its recorded answer for each. */
const ANSWERS: Record<string, string> = {
  'token-web': 'tokenreview-serviceaccount.json',
  'token-deleted-pod': 'tokenreview-unauthenticated.json',
  'token-alice': 'tokenreview-user.json',
  'token-500': 'status-500-internal.json',
};

interface Seen {
  method: string | undefined;
  path: string | undefined;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

interface FakeApiServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

function selfSigned(dir: string, name: string): { certPem: string; keyPem: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'pipe' });
  return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

async function startFakeApiServer(tls: { certPem: string; keyPem: string }): Promise<FakeApiServer> {
  const seen: Seen[] = [];
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    const request: Seen = { method: req.method, path: req.url, authorization: req.headers.authorization, contentType: req.headers['content-type'], body };
    seen.push(request);
    const answer = (name: string): void => {
      const object = testdata(name);
      const parsed = JSON.parse(object) as { kind: string; code?: number };
      res.writeHead(parsed.kind === 'Status' ? parsed.code! : 201, { 'content-type': 'application/json' });
      res.end(object);
    };
    // As the API server: authentication first, then authorization.
    if (request.authorization === 'Bearer controller-without-rbac') return answer('status-403-forbidden.json');
    if (request.authorization !== `Bearer ${CONTROLLER_TOKEN}`) return answer('status-401-unauthorized.json');
    const token = (body as { spec?: { token?: unknown } } | undefined)?.spec?.token;
    const expected = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['identity.mesh.io'] } };
    if (request.method !== 'POST' || request.path !== PATH || request.contentType !== 'application/json' || typeof token !== 'string' || !isDeepStrictEqual(body, expected)) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `fake API server: not a TokenReview request: ${JSON.stringify(request)}`, reason: 'BadRequest', code: 400 }));
    }
    if (token === 'token-hang') return;
    if (token === 'token-garbage') {
      res.writeHead(201, { 'content-type': 'application/json' });
      return void res.end('{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":"garbage"}');
    }
    answer(ANSWERS[token] ?? 'tokenreview-unauthenticated.json');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function kubeconfig(path: string, o: { server: string; caPem: string; token: string }): string {
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: kind-mesh',
      '  cluster:',
      `    server: ${o.server}`,
      `    certificate-authority-data: ${Buffer.from(o.caPem).toString('base64')}`,
      'users:',
      '- name: mesh-identity',
      '  user:',
      `    token: ${o.token}`,
      'contexts:',
      '- name: kind-mesh',
      '  context: { cluster: kind-mesh, user: mesh-identity }',
      'current-context: kind-mesh',
      '',
    ].join('\n'),
  );
  return path;
}

async function rejectsWith(promise: Promise<unknown>, code: string, status?: number, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof Error && 'code' in e, `unexpected ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (status !== undefined) assert.equal((e as ApiError).status, status, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

describe('kubernetes token reviewer', () => {
  let dir: string;
  let tls: { certPem: string; keyPem: string };
  let api: FakeApiServer;
  let reviewer: TokenReviewer;
  const fromKubeconfig = (path: string): FoundCredentials => ({ kind: 'kubeconfig', paths: [path], from: '--kubeconfig' });
  let goodKubeconfig: string;
  /** An identity directory (ca.crt, issuer.crt, issuer.key), as `mesh identity init` leaves it. */
  let caDir: string;
  let anchorPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-kube-'));
    tls = selfSigned(dir, 'kube-apiserver');
    api = await startFakeApiServer(tls);
    goodKubeconfig = kubeconfig(join(dir, 'kubeconfig'), { server: api.url, caPem: tls.certPem, token: CONTROLLER_TOKEN });
    reviewer = await kubernetesTokenReviewer({ credentials: fromKubeconfig(goodKubeconfig) });
    caDir = join(dir, 'ca');
    mkdirSync(caDir);
    const anchor = await createTrustAnchor();
    const issuer = await createIssuer(anchor);
    anchorPem = anchor.certPem;
    writeFileSync(join(caDir, 'ca.crt'), anchor.certPem);
    writeFileSync(join(caDir, 'issuer.crt'), issuer.certPem);
    writeFileSync(join(caDir, 'issuer.key'), issuer.keyPem, { mode: 0o600 });
  });
  after(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks as the API server expects: POST tokenreviews, its own bearer token, the token and audience identity.mesh.io', async () => {
    const before = api.seen.length;
    assert.deepEqual(await reviewer.review('token-web', new Date()), { subject: 'system:serviceaccount:emojivoto:web' });
    assert.deepEqual(api.seen.slice(before), [
      {
        method: 'POST',
        path: PATH,
        authorization: 'Bearer controller-token',
        contentType: 'application/json',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'token-web', audiences: ['identity.mesh.io'] } },
      },
    ]);
  });

  it("refuses what the API server does not vouch for as the workload's fault (403)", async () => {
    await rejectsWith(reviewer.review('token-deleted-pod', new Date()), 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED', 403, /service account token has been invalidated/);
    await rejectsWith(reviewer.review('token-alice', new Date()), 'MESH_CA_BAD_IDENTITY', undefined, /not a service account/);
  });

  it("the API server's failures and its refusal of our own credentials are ours (503)", async () => {
    await rejectsWith(reviewer.review('token-500', new Date()), 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /error validating audiences/);
    await rejectsWith(reviewer.review('token-garbage', new Date()), 'MESH_IDENTITY_REVIEW_BAD_RESPONSE', 503);
    const stale = await kubernetesTokenReviewer({ credentials: fromKubeconfig(kubeconfig(join(dir, 'stale'), { server: api.url, caPem: tls.certPem, token: 'expired' })) });
    await rejectsWith(stale.review('token-web', new Date()), 'MESH_IDENTITY_REVIEW_CREDENTIALS', 503, /401: Unauthorized/);
    const noRbac = await kubernetesTokenReviewer({ credentials: fromKubeconfig(kubeconfig(join(dir, 'norbac'), { server: api.url, caPem: tls.certPem, token: 'controller-without-rbac' })) });
    await rejectsWith(noRbac.review('token-web', new Date()), 'MESH_IDENTITY_REVIEW_CREDENTIALS', 503, /403: .*cannot create resource "tokenreviews"/);
  });

  it('an API server that is down, silent, or not the one our CA names: 503 MESH_IDENTITY_REVIEW_UNAVAILABLE', async () => {
    const closed = https.createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const down = await kubernetesTokenReviewer({ credentials: fromKubeconfig(kubeconfig(join(dir, 'down'), { server: `https://127.0.0.1:${port}`, caPem: tls.certPem, token: CONTROLLER_TOKEN })) });
    await rejectsWith(down.review('token-web', new Date()), 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /ECONNREFUSED/);

    const impostorCa = selfSigned(dir, 'impostor').certPem;
    const untrusted = await kubernetesTokenReviewer({ credentials: fromKubeconfig(kubeconfig(join(dir, 'untrusted'), { server: api.url, caPem: impostorCa, token: CONTROLLER_TOKEN })) });
    const asked = api.seen.length;
    await rejectsWith(untrusted.review('token-web', new Date()), 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /self-signed certificate|unable to verify/);
    assert.equal(api.seen.length, asked, 'nothing was sent to a server the CA does not name');

    const impatient = await kubernetesTokenReviewer({ credentials: fromKubeconfig(goodKubeconfig), timeoutMs: 100 });
    await rejectsWith(impatient.review('token-hang', new Date()), 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /no answer within 100 ms/);
  });

  it("in a pod: the mounted token and CA, KUBERNETES_SERVICE_HOST/PORT", async () => {
    const root = join(dir, 'pod');
    mkdirSync(join(root, SERVICE_ACCOUNT_DIR), { recursive: true });
    writeFileSync(join(root, SERVICE_ACCOUNT_DIR, 'token'), CONTROLLER_TOKEN);
    writeFileSync(join(root, SERVICE_ACCOUNT_DIR, 'ca.crt'), tls.certPem);
    const { port } = new URL(api.url);
    const found = findKubernetesCredentials({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, root });
    assert.deepEqual(found, {
      kind: 'in-cluster',
      server: api.url,
      tokenFile: join(root, SERVICE_ACCOUNT_DIR, 'token'),
      caFile: join(root, SERVICE_ACCOUNT_DIR, 'ca.crt'),
    });
    const inPod = await kubernetesTokenReviewer({ credentials: found as FoundCredentials });
    assert.deepEqual(await inPod.review('token-web', new Date()), { subject: 'system:serviceaccount:emojivoto:web' });
    assert.equal(api.seen.at(-1)?.authorization, 'Bearer controller-token');
  });

  it('finds credentials in order --kubeconfig, KUBECONFIG, the pod; says why when there are none', () => {
    const env = { KUBECONFIG: `${join(dir, 'gone')}:${goodKubeconfig}`, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    assert.deepEqual(findKubernetesCredentials({ kubeconfig: join(dir, 'stale'), env }), { kind: 'kubeconfig', paths: [join(dir, 'stale')], from: '--kubeconfig' });
    assert.deepEqual(findKubernetesCredentials({ env }), { kind: 'kubeconfig', paths: [goodKubeconfig], from: 'KUBECONFIG' });
    const none = (o: Parameters<typeof findKubernetesCredentials>[0]): string => {
      const found = findKubernetesCredentials(o);
      assert.equal(found.kind, 'none');
      return (found as { reason: string }).reason;
    };
    assert.match(none({ kubeconfig: join(dir, 'nope'), env }), /--kubeconfig .*nope: no such file/);
    assert.match(none({ env: { KUBECONFIG: join(dir, 'nope') } }), /KUBECONFIG=.*nope: no such file/);
    assert.match(none({ env: {} }), /not in a pod .* neither --kubeconfig nor KUBECONFIG/);
    assert.match(none({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, root: join(dir, 'empty') }), /serviceaccount\/token is missing: is automountServiceAccountToken off/);
    const v6 = findKubernetesCredentials({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, root: join(dir, 'pod') });
    assert.equal((v6 as { server: string }).server, 'https://[fd00::1]:443');
  });

  it("certify(): a certificate for the account the API server names; another account's name refused", async () => {
    const anchor = await createTrustAnchor();
    const issuer = await loadSigner(await createIssuer(anchor));
    const ctx = { issuer, trustDomain: 'cluster.local', reviewer };
    const leaf = await certify({ token: 'token-web', csr: (await createCsr(WEB)).pem }, ctx);
    assert.equal(leaf.identity, WEB);
    assert.equal(new X509Certificate(leaf.certPem).subjectAltName, `DNS:${WEB}`);
    await assert.rejects(certify({ token: 'token-web', csr: (await createCsr(VOTING)).pem }, ctx), (e: unknown) => isCaError(e, 'MESH_CA_IDENTITY_MISMATCH'));
    await rejectsWith(certify({ token: 'token-alice', csr: (await createCsr(WEB)).pem }, ctx), 'MESH_CA_BAD_IDENTITY');

    // The endpoint's statuses for the same decisions.
    const endpoint = certifyEndpoint({ issuer, trustDomain: 'cluster.local', reviewer, leafLifetimeMs: 3_600_000, log: new Log('error', () => {}), now: () => new Date() });
    const ask = async (identity: string, token: string) => endpoint.handle({ identity, token, csr: (await createCsr(identity)).pem }, { path: '', remote: 'test' });
    const refused = async (identity: string, token: string, status: number, code: string) =>
      assert.rejects(ask(identity, token), (e: unknown) => e instanceof ApiError && e.status === status && e.code === code);
    await refused(VOTING, 'token-web', 403, 'MESH_CA_IDENTITY_MISMATCH');
    await refused(WEB, 'token-alice', 403, 'MESH_CA_BAD_IDENTITY');
    await refused(WEB, 'token-deleted-pod', 403, 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED');
    await refused(WEB, 'token-500', 503, 'MESH_IDENTITY_REVIEW_UNAVAILABLE');
    assert.ok(((await ask(WEB, 'token-web')) as { chainPem: string }).chainPem.includes('BEGIN CERTIFICATE'));
  });

  it('the identity service with --token-reviewer kubernetes: certify over HTTP/2; a refusal and an outage told apart', async () => {
    const lines: string[] = [];
    const service = await startIdentityService(
      { dir: caDir, host: '127.0.0.1', port: 0, trustDomain: 'cluster.local', leafLifetimeMs: 3_600_000, tokenReviewer: 'kubernetes', kubeconfig: goodKubeconfig },
      { log: new Log('info', (l) => void lines.push(l)) },
    );
    try {
      const ask = async (identity: string, token: string) =>
        certifyOnce({ url: service.url, trustAnchorPem: anchorPem, serverName: service.serverName, identity, token, csrDer: (await createCsr(identity)).der });
      const certified = await ask(WEB, 'token-web');
      assert.ok(certified.notAfter > new Date());
      const refused = async (identity: string, token: string, status: number, serverCode: string) =>
        assert.rejects(ask(identity, token), (e: unknown) => e instanceof ApiClientError && e.status === status && e.serverCode === serverCode);
      await refused(VOTING, 'token-web', 403, 'MESH_CA_IDENTITY_MISMATCH');
      await refused(WEB, 'token-500', 503, 'MESH_IDENTITY_REVIEW_UNAVAILABLE');
      assert.ok(lines.some((l) => / INFO listening .*tokenReviewer=kubernetes/.test(l)), lines.join(''));
      assert.ok(lines.some((l) => / WARN refused identity=voting\..* code=MESH_CA_IDENTITY_MISMATCH/.test(l)), lines.join(''));
      assert.ok(lines.some((l) => / ERROR failed identity=web\..* code=MESH_IDENTITY_REVIEW_UNAVAILABLE/.test(l)), lines.join(''));
    } finally {
      await service.close();
    }
  });

  it('mesh-controller identity --token-reviewer kubernetes: no credentials is one line and exit 2; with --kubeconfig it serves', async () => {
    const env = { PATH: process.env.PATH ?? '', HOME: dir };
    const run = async (args: string[]): Promise<{ code: number | null; err: string }> => {
      const child = spawn(process.execPath, [controllerBin, 'identity', '--dir', caDir, '--listen', '127.0.0.1:0', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (t: string) => {
        // Once: a second SIGTERM would find no handler and kill it mid-close.
        if (!/ INFO listening /.test(err) && / INFO listening /.test((err += t))) child.kill('SIGTERM');
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return { code, err };
    };
    const none = await run(['--token-reviewer', 'kubernetes']);
    assert.equal(none.code, 2, none.err);
    assert.match(none.err, /^mesh-controller identity: --token-reviewer kubernetes: no Kubernetes credentials: not in a pod .* \(see mesh-controller identity --help\)\n$/);
    const missing = await run(['--token-reviewer', 'kubernetes', '--kubeconfig', join(dir, 'nope')]);
    assert.equal(missing.code, 2, missing.err);
    assert.match(missing.err, /^mesh-controller identity: --token-reviewer kubernetes: --kubeconfig .*nope: no such file/);
    const serving = await run(['--token-reviewer', 'kubernetes', '--kubeconfig', goodKubeconfig]);
    assert.equal(serving.code, 0, serving.err);
    assert.match(serving.err, / INFO listening .*tokenReviewer=kubernetes/);
  });
});

