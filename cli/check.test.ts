// `mesh check` against a fake kube-apiserver: real HTTPS on 127.0.0.1 with an
// openssl self-signed certificate, reached through a real kubeconfig and the
// shared Kubernetes client, answering GETs with API objects in the shape a
// v1.30 API server returns them (server-set metadata, defaulted fields, pod
// status). The control-plane objects are the ones `mesh install` renders, so
// a healthy cluster is one where install's objects exist and its pods run.
// No real cluster runs here: no kind, no kubelet, no container engine.
// MESH_UPDATE_GOLDEN=1 rewrites the golden file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIssuer, createTrustAnchor, issueServingCert, loadSigner } from '../ca/index.js';
import { INSTALL_RESOURCES } from './check-cluster.js';
import { kubeClientFor, runCheck, type CheckOptions } from './check.js';
import { injectorServiceName, installManifests } from './install-objects.js';

const TOKEN = 'operator-token';
const DAY = 86_400_000;
const golden = new URL('../../cli/testdata/check/healthy.txt', import.meta.url).pathname;
const preGolden = new URL('../../cli/testdata/check/pre.txt', import.meta.url).pathname;
const update = process.env.MESH_UPDATE_GOLDEN === '1';

type Obj = Record<string, any>;
let serial = 0;

/** What the API server adds to every object it stores. */
function served(o: Obj): Obj {
  serial++;
  return {
    ...o,
    metadata: { ...o.metadata, uid: `3f6b1c2e-0000-4000-8000-${String(serial).padStart(12, '0')}`, resourceVersion: String(1000 + serial), creationTimestamp: '2026-11-20T09:00:00Z' },
  };
}

function namespace(name: string, labels: Record<string, string> = {}): Obj {
  return served({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
}

/** A pod as the ReplicaSet controller creates it and kubelet reports it. */
function pod(ns: string, name: string, spec: Obj, labels: Record<string, string>, ready: boolean, containerNames: { main: string[]; sidecars: string[] }): Obj {
  const status = (c: string): Obj => ({
    name: c, ready, restartCount: 0, started: true, image: 'mesh:test', imageID: 'docker.io/library/mesh@sha256:0f3c', containerID: `containerd://${c}0a1b2c`,
    state: ready ? { running: { startedAt: '2026-11-20T09:00:05Z' } } : { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 5m0s restarting failed container' } },
  });
  const cond = (type: string, ok: boolean): Obj => ({ type, status: ok ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: '2026-11-20T09:00:06Z' });
  return served({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, generateName: name.replace(/[^-]+$/, ''), namespace: ns, labels: { ...labels, 'pod-template-hash': '7d9f8c6b5' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: name.replace(/-[^-]+$/, ''), uid: 'a1b2c3d4-0000-4000-8000-000000000001', controller: true, blockOwnerDeletion: true }] },
    spec: { ...spec, nodeName: 'kind-worker', restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', terminationGracePeriodSeconds: 30 },
    status: {
      phase: 'Running',
      conditions: [cond('PodReadyToStartContainers', true), cond('Initialized', true), cond('Ready', ready), cond('ContainersReady', ready), cond('PodScheduled', true)],
      hostIP: '172.18.0.3', podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }], qosClass: 'BestEffort', startTime: '2026-11-20T09:00:01Z',
      containerStatuses: containerNames.main.map(status),
      ...(containerNames.sidecars.length === 0 ? {} : { initContainerStatuses: containerNames.sidecars.map(status) }),
    },
  });
}

interface ClusterShape {
  issuerDays?: number;
  caBundleFromOtherCa?: boolean;
  injectorReady?: boolean;
  proxyReady?: boolean;
}

/** The objects a GET path answers with, for a cluster after `mesh install | kubectl apply -f -`. */
async function cluster(shape: ClusterShape = {}): Promise<Map<string, Obj>> {
  const now = new Date();
  const anchor = await createTrustAnchor({ now, validityDays: 3650 });
  const issuerPair = await createIssuer(anchor, { now, validityDays: shape.issuerDays ?? 365 });
  const tls = await issueServingCert({ issuer: await loadSigner(issuerPair), dnsNames: [injectorServiceName('mesh')], lifetimeMs: 365 * DAY, now });
  const manifests = installManifests({
    namespace: 'mesh', image: 'mesh:test', version: '0.0.0-test', trustDomain: 'cluster.local', nativeSidecar: true,
    identity: { anchorPem: anchor.certPem, issuerCertPem: issuerPair.certPem, issuerKeyPem: issuerPair.keyPem }, injectorTls: { chainPem: tls.chainPem, keyPem: tls.keyPem },
  }).map((m) => m.object as Obj);
  const of = (kind: string, name: string): Obj => manifests.find((o) => o.kind === kind && o.metadata.name === name)!;
  const paths = new Map<string, Obj>();
  paths.set('/version', { major: '1', minor: '30', gitVersion: 'v1.30.4', gitCommit: 'a51b3b711150f57ffc1f526a640ec058514f2f4a', gitTreeState: 'clean', buildDate: '2024-08-14T19:03:03Z', goVersion: 'go1.22.5', compiler: 'gc', platform: 'linux/amd64' });
  paths.set('/api/v1/namespaces/default', namespace('default'));
  paths.set('/api/v1/namespaces/mesh', namespace('mesh', of('Namespace', 'mesh').metadata.labels));
  for (const [kind, name, resource] of [['Secret', 'mesh-identity-issuer', 'secrets'], ['Secret', 'mesh-injector-tls', 'secrets'], ['ConfigMap', 'mesh-identity-trust-roots', 'configmaps']] as const) {
    paths.set(`/api/v1/namespaces/mesh/${resource}/${name}`, served(of(kind, name)));
  }
  const webhook = served(of('MutatingWebhookConfiguration', 'mesh-injector-webhook'));
  // Defaults the API server fills in.
  webhook.webhooks = webhook.webhooks.map((w: Obj) => ({ ...w, reinvocationPolicy: 'Never', objectSelector: {} }));
  if (shape.caBundleFromOtherCa) webhook.webhooks[0].clientConfig.caBundle = Buffer.from((await createTrustAnchor({ now })).certPem).toString('base64');
  paths.set('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mesh-injector-webhook', webhook);
  const controlPod = (deployment: string, suffix: string, ready: boolean): Obj => {
    const template = of('Deployment', deployment).spec.template;
    return pod('mesh', `${deployment}-7d9f8c6b5-${suffix}`, template.spec, template.metadata.labels, ready, { main: template.spec.containers.map((c: Obj) => c.name), sidecars: [] });
  };
  const controlPods = [controlPod('mesh-identity', 'x2k4q', true), controlPod('mesh-injector', 'p8m3z', shape.injectorReady ?? true)];
  const list = (items: Obj[]): Obj => ({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '2048' }, items });
  paths.set('/api/v1/namespaces/mesh/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dmesh', list(controlPods));
  // A meshed workload: the proxy as a native sidecar, as the injector writes it on 1.29+.
  const web = pod('emojivoto', 'web-5c8d6f7b9-q7w2e', {
    serviceAccountName: 'web',
    initContainers: [{ name: 'mesh-init', image: 'mesh:test' }, { name: 'mesh-proxy', image: 'mesh:test', restartPolicy: 'Always' }],
    containers: [{ name: 'web-svc', image: 'buoyantio/emojivoto-web:v11' }],
  }, { app: 'web-svc', 'mesh.io/control-plane-ns': 'mesh' }, shape.proxyReady ?? true, { main: ['web-svc'], sidecars: ['mesh-proxy'] });
  web.status.initContainerStatuses.unshift({ name: 'mesh-init', ready: true, restartCount: 0, started: false, image: 'mesh:test', imageID: 'docker.io/library/mesh@sha256:0f3c', state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: '2026-11-20T09:00:02Z', finishedAt: '2026-11-20T09:00:02Z' } } });
  paths.set('/api/v1/pods', list([...controlPods, web]));
  return paths;
}

/** The objects `mesh install` renders, for the test that install's kinds and --pre's reviews are the same list. */
async function installKinds(): Promise<string[]> {
  const anchor = await createTrustAnchor({ now: new Date() });
  const issuerPair = await createIssuer(anchor, { now: new Date() });
  const tls = await issueServingCert({ issuer: await loadSigner(issuerPair), dnsNames: [injectorServiceName('mesh')], lifetimeMs: DAY, now: new Date() });
  return [...new Set(installManifests({
    namespace: 'mesh', image: 'mesh:test', version: '0.0.0-test', trustDomain: 'cluster.local', nativeSidecar: true,
    identity: { anchorPem: anchor.certPem, issuerCertPem: issuerPair.certPem, issuerKeyPem: issuerPair.keyPem }, injectorTls: { chainPem: tls.chainPem, keyPem: tls.keyPem },
  }).map((m) => m.object.kind))].sort();
}

interface FakeApiServer {
  url: string;
  paths: Map<string, Obj>;
  /** SelfSubjectAccessReviews answered allowed: false, by "verb resource". */
  denied: Set<string>;
  /** Every SelfSubjectAccessReview spec posted. */
  reviews: Obj[];
  close(): Promise<void>;
}

async function startFakeApiServer(tls: { certPem: string; keyPem: string }): Promise<FakeApiServer> {
  const fake = { paths: new Map<string, Obj>(), denied: new Set<string>(), reviews: [] as Obj[] };
  const status = (code: number, reason: string, message: string): Obj => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const send = (code: number, body: Obj): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // /version is readable by anyone (system:public-info-viewer); everything else needs the token.
    if (req.url !== '/version' && req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    if (req.method === 'POST' && req.url === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let review: Obj;
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return send(400, status(400, 'BadRequest', 'the body of the request was in an unknown format'));
        }
        if (review.kind !== 'SelfSubjectAccessReview' || review.apiVersion !== 'authorization.k8s.io/v1' || review.spec?.resourceAttributes === undefined) {
          return send(400, status(400, 'BadRequest', 'not a SelfSubjectAccessReview with resourceAttributes'));
        }
        fake.reviews.push(review.spec);
        const ra = review.spec.resourceAttributes;
        const allowed = !fake.denied.has(`${ra.verb} ${ra.resource}`);
        // As RBAC answers: a reason when a binding allows it, none when nothing does.
        send(201, {
          kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec: review.spec,
          status: allowed ? { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"' } : { allowed: false },
        });
      });
      return;
    }
    if (req.method !== 'GET') return send(405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    const found = fake.paths.get(req.url ?? '');
    if (found === undefined) return send(404, status(404, 'NotFound', `${req.url} not found`));
    send(200, found);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(fake, {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  });
}

function writeKubeconfig(path: string, o: { server: string; caPem: string; token: string }): string {
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', '- name: kind-mesh', '  cluster:', `    server: ${o.server}`, `    certificate-authority-data: ${Buffer.from(o.caPem).toString('base64')}`,
    'users:', '- name: operator', '  user:', `    token: ${o.token}`,
    'contexts:', '- name: kind-mesh', '  context: { cluster: kind-mesh, user: operator }',
    'current-context: kind-mesh', '',
  ].join('\n'));
  return path;
}

describe('mesh check', () => {
  let dir: string;
  let api: FakeApiServer;
  let kubeconfig: string;

  async function check(o: Partial<CheckOptions> & { kubeconfig?: string } = {}): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCheck({ namespace: o.namespace ?? 'mesh', output: o.output ?? 'table', mode: o.mode ?? 'all', ...(o.proxyNamespace === undefined ? {} : { proxyNamespace: o.proxyNamespace }) }, {
      now: () => new Date(),
      client: () => kubeClientFor({ kubeconfig: o.kubeconfig ?? kubeconfig }, {}),
    }, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
    return { code, out, err };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-check-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=kube-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'api.key'), '-out', join(dir, 'api.crt')], { stdio: 'pipe' });
    const tls = { certPem: readFileSync(join(dir, 'api.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'api.key'), 'utf8') };
    api = await startFakeApiServer(tls);
    kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url, caPem: tls.certPem, token: TOKEN });
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a healthy cluster: every check √, exit 0, the golden output', async () => {
    api.paths = await cluster();
    const { code, out } = await check();
    if (update) {
      mkdirSync(new URL('.', `file://${golden}`), { recursive: true });
      writeFileSync(golden, out);
    }
    assert.equal(out, readFileSync(golden, 'utf8'), 'differs from testdata/check/healthy.txt (MESH_UPDATE_GOLDEN=1 to accept)');
    assert.equal(code, 0);
    assert.doesNotMatch(out, /×/);
  });

  it('-o json: linkerd check\'s shape, success true', async () => {
    api.paths = await cluster();
    const { code, out } = await check({ output: 'json' });
    const report = JSON.parse(out);
    assert.equal(code, 0);
    assert.equal(report.success, true);
    assert.deepEqual(report.categories.map((c: Obj) => c.categoryName), ['kubernetes-api', 'control-plane', 'identity', 'webhook', 'data-plane']);
    assert.ok(report.categories.every((c: Obj) => c.checks.every((k: Obj) => k.result === 'success')));
  });

  it('an issuer expiring in 10 days: × with the date and a hint to rotate, exit 1; everything else √', async () => {
    api.paths = await cluster({ issuerDays: 10 });
    const { code, out } = await check();
    assert.equal(code, 1);
    assert.match(out, /× the issuer certificate is valid for at least 60 more days\n {4}the issuer expires on \S+ \(in (9|10) days\)\n {4}hint: rotate it/);
    assert.equal(out.match(/×/g)?.length, 2, 'one failed check and the summary');
    assert.match(out, /Status check results are ×\n$/);
  });

  it("a caBundle from another CA: × on the webhook's certificate check, exit 1", async () => {
    api.paths = await cluster({ caBundleFromOtherCa: true });
    const { code, out } = await check();
    assert.equal(code, 1);
    assert.match(out, /√ the webhook configuration exists\n× the webhook's caBundle verifies the injector's serving certificate\n {4}the serving certificate \(CN=mesh-injector\.mesh\.svc\) does not chain to the caBundle/);
    const json = JSON.parse((await check({ output: 'json' })).out);
    assert.equal(json.success, false);
    const failed = json.categories.flatMap((c: Obj) => c.checks.filter((k: Obj) => k.result === 'error').map((k: Obj) => `${c.categoryName}: ${k.description}`));
    assert.deepEqual(failed, ["webhook: the webhook's caBundle verifies the injector's serving certificate"]);
  });

  it('an injector pod not ready: × naming the pod and a describe hint, exit 1', async () => {
    api.paths = await cluster({ injectorReady: false });
    const { code, out } = await check();
    assert.equal(code, 1);
    assert.match(out, /√ mesh-identity pods are running and ready\n× mesh-injector pods are running and ready\n {4}mesh-injector-7d9f8c6b5-p8m3z \(Running, not ready\)\n {4}hint: kubectl -n mesh describe pod mesh-injector-7d9f8c6b5-p8m3z\n/);
  });

  it('a meshed pod whose proxy is not ready (not certified): × naming the pod and a logs hint, exit 1', async () => {
    api.paths = await cluster({ proxyReady: false });
    const { code, out } = await check();
    assert.equal(code, 1);
    assert.match(out, /× meshed pods and their proxies are ready\n {4}not ready: emojivoto\/web-5c8d6f7b9-q7w2e\n {4}hint: kubectl -n emojivoto logs web-5c8d6f7b9-q7w2e -c mesh-proxy\n/);
  });

  it('a cluster without the control plane: × lines pointing at mesh install, exit 1', async () => {
    api.paths = await cluster();
    for (const path of [...api.paths.keys()]) if (path.includes('/mesh') || path.startsWith('/apis/')) api.paths.delete(path);
    const { code, out } = await check();
    assert.equal(code, 1);
    assert.match(out, /× the control-plane namespace exists\n {4}namespace mesh: \/api\/v1\/namespaces\/mesh not found\n {4}hint: run mesh install \| kubectl apply -f -/);
  });

  it('rejected credentials: × the credentials are accepted, exit 1', async () => {
    api.paths = await cluster();
    const { code, out } = await check({ kubeconfig: writeKubeconfig(join(dir, 'bad-token'), { server: api.url, caPem: readFileSync(join(dir, 'api.crt'), 'utf8'), token: 'expired' }) });
    assert.equal(code, 1);
    assert.match(out, /√ can reach the Kubernetes API server\n× the credentials are accepted\n {4}GET namespace default: Unauthorized\n {4}hint: check the credentials/);
  });

  it('the API server down: one × line saying it cannot be reached, exit 2', async () => {
    const closed = https.createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const { code, out } = await check({ kubeconfig: writeKubeconfig(join(dir, 'down'), { server: `https://127.0.0.1:${port}`, caPem: readFileSync(join(dir, 'api.crt'), 'utf8'), token: TOKEN }) });
    assert.equal(code, 2);
    assert.match(out, new RegExp(`^kubernetes-api\\n-+\\n× can reach the Kubernetes API server\\n {4}cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\)\\n {4}hint: is the cluster up\\?`));
  });

  /** A cluster before mesh install: the API and the meshed-looking workloads, no control plane. */
  async function emptyCluster(): Promise<Map<string, Obj>> {
    const paths = await cluster();
    for (const path of [...paths.keys()]) if (path.includes('/mesh') || path.startsWith('/apis/')) paths.delete(path);
    return paths;
  }

  it('--pre reviews exactly the kinds mesh install renders, with verb create', async () => {
    assert.deepEqual(INSTALL_RESOURCES.map((r) => r.kind).sort(), await installKinds());
    api.paths = await emptyCluster();
    api.denied = new Set();
    api.reviews = [];
    await check({ mode: 'pre' });
    assert.deepEqual(api.reviews.map((s) => s.resourceAttributes), INSTALL_RESOURCES.map((r) => ({ ...(r.namespaced ? { namespace: 'mesh' } : {}), verb: 'create', group: r.group, resource: r.resource })));
  });

  it('--pre on an empty cluster with every review allowed: every check √, exit 0, the golden output', async () => {
    api.paths = await emptyCluster();
    api.denied = new Set();
    const { code, out } = await check({ mode: 'pre' });
    if (update) writeFileSync(preGolden, out);
    assert.equal(out, readFileSync(preGolden, 'utf8'), 'differs from testdata/check/pre.txt (MESH_UPDATE_GOLDEN=1 to accept)');
    assert.equal(code, 0);
    assert.doesNotMatch(out, /×/);
  });

  it('--pre with create mutatingwebhookconfigurations denied: × naming the resource and verb, a hint, exit 1', async () => {
    api.paths = await emptyCluster();
    api.denied = new Set(['create mutatingwebhookconfigurations']);
    const { code, out } = await check({ mode: 'pre' });
    assert.equal(code, 1);
    assert.match(out, /× can create mutatingwebhookconfigurations\.admissionregistration\.k8s\.io\n {4}not allowed to create mutatingwebhookconfigurations\.admissionregistration\.k8s\.io\n {4}hint: mesh install needs create on mutatingwebhookconfigurations\.admissionregistration\.k8s\.io: ask a cluster admin for it \(kubectl auth can-i create mutatingwebhookconfigurations\.admissionregistration\.k8s\.io\)\n/);
    assert.equal(out.match(/×/g)?.length, 2, 'one failed check and the summary');
    const json = JSON.parse((await check({ mode: 'pre', output: 'json' })).out);
    assert.equal(json.success, false);
    assert.deepEqual(json.categories.map((c: Obj) => c.categoryName), ['kubernetes-api', 'pre-install', 'permissions']);
    api.denied = new Set(['create secrets']);
    assert.match((await check({ mode: 'pre' })).out, /× can create secrets\n {4}not allowed to create secrets in namespace mesh\n {4}hint: .*kubectl auth can-i create secrets -n mesh\)\n/);
    api.denied = new Set();
  });

  it('--pre on a cluster where the control plane is installed: × saying so, exit 1', async () => {
    api.paths = await cluster();
    const { code, out } = await check({ mode: 'pre' });
    assert.equal(code, 1);
    assert.match(out, /× the control-plane namespace does not exist yet\n {4}namespace mesh already exists: the control plane is installed\n {4}hint: run mesh check \(without --pre\)/);
    assert.match(out, /× the webhook configuration does not exist yet\n/);
  });

  it('--proxy: the data-plane checks only; one unready proxy is ×, exit 1', async () => {
    api.paths = await cluster();
    const healthy = await check({ mode: 'proxy' });
    assert.equal(healthy.code, 0);
    assert.equal(healthy.out, 'data-plane\n----------\n√ meshed pods and their proxies are ready\n\nStatus check results are √\n');
    api.paths = await cluster({ proxyReady: false });
    const { code, out } = await check({ mode: 'proxy' });
    assert.equal(code, 1);
    assert.match(out, /^data-plane\n-+\n× meshed pods and their proxies are ready\n {4}not ready: emojivoto\/web-5c8d6f7b9-q7w2e\n {4}hint: kubectl -n emojivoto logs web-5c8d6f7b9-q7w2e -c mesh-proxy\n\nStatus check results are ×\n$/);
  });

  it('--proxy --proxy-namespace: only that namespace\'s pods', async () => {
    api.paths = await cluster({ proxyReady: false });
    const all = (api.paths.get('/api/v1/pods')!.items as Obj[]);
    const list = (ns: string): Obj => ({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '2048' }, items: all.filter((p) => p.metadata.namespace === ns) });
    api.paths.set('/api/v1/namespaces/emojivoto/pods', list('emojivoto'));
    api.paths.set('/api/v1/namespaces/mesh/pods', list('mesh'));
    assert.equal((await check({ mode: 'proxy', proxyNamespace: 'mesh' })).code, 0);
    const { code, out } = await check({ mode: 'proxy', proxyNamespace: 'emojivoto' });
    assert.equal(code, 1);
    assert.match(out, /not ready: emojivoto\/web-5c8d6f7b9-q7w2e/);
  });

  it('a kubeconfig that does not exist: exit 2, no checks run', async () => {
    const { code, out, err } = await check({ kubeconfig: join(dir, 'nope') });
    assert.equal(out, '');
    assert.match(err, /^mesh check: --kubeconfig .*nope: no such file \(see mesh check --help\)\n$/);
    assert.equal(code, 2);
  });
});
