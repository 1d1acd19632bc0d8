// The webhook as the API server uses it: a real HTTPS server with a serving
// certificate from the mesh CA, verified against the trust anchor (the caBundle)
// under the Service's DNS name, sent AdmissionReviews in the shape a ReplicaSet's
// pod creation produces, over HTTP/1.1 and HTTP/2. Every patched pod is checked
// against the Kubernetes schema and the API server's own pod rules.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { createIssuer, createTrustAnchor, issueServingCert, loadSigner } from '../ca/index.js';
import { ADMISSION_WEBHOOKS_LABEL, CONFIG, INJECT, RECORD } from '../contract/annotations.js';
import { IDENTITY_AUDIENCE, PROXY_ENV, PROXY_PORTS, PROXY_UID, SIDECAR } from '../contract/sidecar.js';
import { Log } from '../shared/log.js';
import { assertValid } from '../test/kubernetes-schema.js';
import { applyPatch, INJECT_PATH, startInjector, staticNamespaces, type InjectorConfig, type InjectorService, type NamespaceInfo } from './index.js';

const SERVICE_NAME = 'mesh-injector.mesh.svc';
const review = JSON.parse(readFileSync(new URL('../../injector/testdata/pod-create-from-replicaset.json', import.meta.url), 'utf8')) as Review;

interface Container { name: string; args?: string[]; env?: { name: string; value?: string }[]; restartPolicy?: string; resources?: unknown; securityContext?: any; startupProbe?: unknown; lifecycle?: unknown; command?: string[] }
interface Pod { metadata: { annotations?: Record<string, string>; labels?: Record<string, string>; namespace?: string }; spec: { containers: Container[]; initContainers?: Container[]; volumes?: any[]; hostNetwork?: boolean } }
interface Review { request: { uid: string; namespace: string; operation: string; object: Pod; resource: { resource: string } } }
interface Answer { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType?: string; patch?: string; warnings?: string[] } }

const namespaces: NamespaceInfo[] = [
  { name: 'emojivoto', labels: {}, annotations: { [INJECT]: 'enabled', [CONFIG.opaquePorts]: '4000', [CONFIG.proxyLogLevel]: 'debug' } },
  { name: 'plain', labels: {}, annotations: {} },
  { name: 'kube-system', labels: {}, annotations: { [INJECT]: 'enabled' } },
  { name: 'legacy', labels: { [ADMISSION_WEBHOOKS_LABEL]: 'disabled' }, annotations: { [INJECT]: 'enabled' } },
  { name: 'broken-ns', labels: {}, annotations: { [INJECT]: 'enabled', [CONFIG.skipSubnets]: '10.0.0.0/40' } },
];

let anchorPem: string;
let injector: InjectorService;
const logLines: string[] = [];
const config: InjectorConfig = {
  image: 'mesh:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  version: '0.1.0',
  controlPlaneNamespace: 'mesh',
  trustDomain: 'cluster.local',
  trustAnchorsPem: '',
  identityUrl: 'https://mesh-identity.mesh.svc.cluster.local:8080',
  nativeSidecar: false,
  injectedBy: 'webhook',
};

before(async () => {
  const anchor = await createTrustAnchor({ trustDomain: 'cluster.local' });
  const issuerPair = await createIssuer(anchor, { trustDomain: 'cluster.local' });
  const issuer = await loadSigner(issuerPair);
  const serving = await issueServingCert({ issuer, dnsNames: [SERVICE_NAME], lifetimeMs: 3_600_000 });
  anchorPem = anchor.certPem;
  config.trustAnchorsPem = anchorPem;
  injector = await startInjector(
    { certPem: serving.chainPem, keyPem: serving.keyPem, host: '127.0.0.1', port: 0, config, namespaces: staticNamespaces(namespaces) },
    { log: new Log('debug', (l) => void logLines.push(l)) },
  );
});
after(() => injector.close());

/** A review for a pod like the recorded one, in `namespace`, with these annotations added. */
function reviewFor(namespace: string, annotations: Record<string, string> = {}, edit: (pod: Pod) => void = () => {}): Review {
  const r = structuredClone(review);
  r.request.namespace = namespace;
  r.request.object.metadata.namespace = namespace;
  Object.assign(r.request.object.metadata.annotations!, annotations);
  edit(r.request.object);
  return r;
}

/** POSTs as kube-apiserver does: HTTPS verified against the caBundle as the Service's name, ?timeout=10s. */
function postH1(body: unknown): Promise<{ status: number; json: any }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: injector.address.port, path: `${INJECT_PATH}?timeout=10s`, method: 'POST', ca: anchorPem, servername: SERVICE_NAME, headers: { 'content-type': 'application/json', accept: 'application/json, */*', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function postH2(body: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${injector.address.port}`, { ca: anchorPem, servername: SERVICE_NAME });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': `${INJECT_PATH}?timeout=10s`, 'content-type': 'application/json' });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => void (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      session.close();
      resolve({ status, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
    });
    req.end(JSON.stringify(body));
  });
}

async function admitted(r: Review, post = postH1): Promise<{ answer: Answer; pod: Pod }> {
  const { status, json } = await post(r);
  assert.equal(status, 200);
  const answer = json as Answer;
  assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
  assert.equal(answer.kind, 'AdmissionReview');
  assert.equal(answer.response.uid, r.request.uid, 'the response names the request it answers');
  assert.equal(answer.response.allowed, true, 'never a refusal');
  const ops = answer.response.patch === undefined ? [] : JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
  if (answer.response.patch !== undefined) assert.equal(answer.response.patchType, 'JSONPatch');
  const pod = applyPatch(r.request.object, ops);
  assertValid(pod);
  return { answer, pod };
}

const proxyOf = (pod: Pod): Container | undefined => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === SIDECAR.proxyContainer);
const initOf = (pod: Pod): Container | undefined => pod.spec.initContainers?.find((c) => c.name === SIDECAR.initContainer);
const envOf = (c: Container, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
const flag = (args: string[] | undefined, name: string): string | undefined => {
  const i = args?.indexOf(name) ?? -1;
  return i < 0 ? undefined : args![i + 1];
};

describe('injector webhook', () => {
  it('injects a ReplicaSet pod of an enabled namespace: proxy first, mesh-init first, identity volume, record annotations (HTTP/1.1 and HTTP/2)', async () => {
    for (const post of [postH1, postH2]) {
      const { answer, pod } = await admitted(reviewFor('emojivoto'), post);
      assert.equal(answer.response.warnings, undefined);
      assert.deepEqual(pod.spec.containers.map((c) => c.name), [SIDECAR.proxyContainer, 'web-svc', 'metrics-exporter']);
      assert.deepEqual(pod.spec.initContainers!.map((c) => c.name), [SIDECAR.initContainer]);
      const proxy = proxyOf(pod)!;
      assert.equal(proxy.securityContext.runAsUser, PROXY_UID);
      assert.deepEqual(proxy.securityContext.capabilities, { drop: ['ALL'] });
      assert.equal(envOf(proxy, PROXY_ENV.identityName), '$(MESH_POD_SERVICE_ACCOUNT).$(MESH_POD_NAMESPACE).serviceaccount.identity.cluster.local');
      assert.equal(envOf(proxy, PROXY_ENV.identityUrl), config.identityUrl);
      // Namespace settings inherited: its opaque port and log level.
      assert.equal(envOf(proxy, PROXY_ENV.opaquePorts), '4000');
      assert.equal(envOf(proxy, PROXY_ENV.logLevel), 'debug');
      assert.ok(proxy.lifecycle, 'a regular proxy container holds the app back with its postStart hook');
      const init = initOf(pod)!;
      assert.deepEqual(init.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
      assert.equal(init.securityContext.readOnlyRootFilesystem, true);
      assert.equal(flag(init.args, '--proxy-uid'), String(PROXY_UID));
      assert.equal(flag(init.args, '--proxy-ports'), `${PROXY_PORTS.control}-${PROXY_PORTS.admin}`, "the proxy's own ports are always skipped");
      const identity = pod.spec.volumes!.find((v) => v.name === SIDECAR.identityVolume);
      assert.equal(identity.projected.sources[0].serviceAccountToken.audience, IDENTITY_AUDIENCE);
      assert.equal(pod.spec.volumes![0].name, 'kube-api-access-7xq2m', "the pod's own volumes keep their place");
      const a = pod.metadata.annotations!;
      assert.equal(a[RECORD.proxyVersion], '0.1.0');
      assert.equal(a[RECORD.injectedBy], 'webhook');
      assert.equal(a[RECORD.trustAnchors], anchorPem);
      assert.equal(a['prometheus.io/scrape'], 'true');
      assert.equal(pod.metadata.labels!['mesh.io/control-plane-ns'], 'mesh');
    }
  });

  it('honours every config annotation on the pod, over the namespace', async () => {
    const { pod } = await admitted(
      reviewFor('emojivoto', {
        [CONFIG.skipInboundPorts]: '22, 8000-8100',
        [CONFIG.skipOutboundPorts]: '443',
        [CONFIG.skipSubnets]: '10.96.0.0/12,fd00::/8',
        [CONFIG.interceptionMode]: 'tproxy',
        [CONFIG.opaquePorts]: 'mysql,6379',
        [CONFIG.proxyCpuRequest]: '100m',
        [CONFIG.proxyCpuLimit]: '1',
        [CONFIG.proxyMemoryRequest]: '20Mi',
        [CONFIG.proxyMemoryLimit]: '250Mi',
        [CONFIG.proxyLogLevel]: 'warn',
      }),
    );
    const init = initOf(pod)!;
    assert.equal(flag(init.args, '--skip-inbound-ports'), '22,8000-8100');
    assert.equal(flag(init.args, '--skip-outbound-ports'), '443');
    assert.equal(flag(init.args, '--skip-subnets'), '10.96.0.0/12,fd00::/8');
    assert.equal(flag(init.args, '--mode'), 'tproxy');
    const proxy = proxyOf(pod)!;
    assert.equal(envOf(proxy, PROXY_ENV.opaquePorts), '3307,6379', 'the port named mysql resolved to its number');
    assert.equal(envOf(proxy, PROXY_ENV.inboundMode), 'tproxy');
    assert.equal(envOf(proxy, PROXY_ENV.logLevel), 'warn', "the pod's value wins over the namespace's");
    assert.deepEqual(proxy.resources, { requests: { cpu: '100m', memory: '20Mi' }, limits: { cpu: '1', memory: '250Mi' } });
    assert.deepEqual(proxy.command, ['mesh-proxy-tproxy']);
    assert.deepEqual(proxy.securityContext.capabilities.add, ['NET_ADMIN']);
  });

  it('makes the proxy a native sidecar on request: an init container after mesh-init, restartPolicy Always, gated by a startup probe', async () => {
    const { answer, pod } = await admitted(reviewFor('emojivoto', { [CONFIG.nativeSidecar]: 'true' }));
    assert.equal(answer.response.warnings, undefined);
    assert.deepEqual(pod.spec.initContainers!.map((c) => [c.name, c.restartPolicy]), [[SIDECAR.initContainer, undefined], [SIDECAR.proxyContainer, 'Always']]);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['web-svc', 'metrics-exporter']);
    assert.ok(proxyOf(pod)!.startupProbe);
    assert.equal(pod.metadata.annotations![RECORD.injected], 'mesh-init,mesh-proxy(native)');
  });

  it('puts mesh-init and the proxy before the pod\'s own init containers', async () => {
    const { pod } = await admitted(reviewFor('emojivoto', { [CONFIG.nativeSidecar]: 'true' }, (p) => void (p.spec.initContainers = [{ name: 'migrate', image: 'migrate:1' } as Container])));
    assert.deepEqual(pod.spec.initContainers!.map((c) => c.name), [SIDECAR.initContainer, SIDECAR.proxyContainer, 'migrate']);
  });

  it('is idempotent: an injected pod sent again is admitted unchanged', async () => {
    const first = await admitted(reviewFor('emojivoto'));
    const again = structuredClone(review);
    again.request.namespace = 'emojivoto';
    again.request.object = first.pod;
    const second = await admitted(again);
    assert.equal(second.answer.response.patch, undefined);
    assert.deepEqual(second.pod, first.pod);
  });

  it('pod annotation decides over the namespace, both ways', async () => {
    assert.equal((await admitted(reviewFor('emojivoto', { [INJECT]: 'disabled' }))).answer.response.patch, undefined);
    assert.ok(proxyOf((await admitted(reviewFor('plain', { [INJECT]: 'enabled' }))).pod));
    assert.equal((await admitted(reviewFor('plain'))).answer.response.patch, undefined, 'neither asks: untouched');
  });

  it('never touches kube-system, an opted-out namespace, or a host-network pod', async () => {
    for (const r of [reviewFor('kube-system', { [INJECT]: 'enabled' }), reviewFor('legacy', { [INJECT]: 'enabled' }), reviewFor('emojivoto', {}, (p) => void (p.spec.hostNetwork = true))]) {
      const { answer } = await admitted(r);
      assert.equal(answer.response.patch, undefined, r.request.namespace);
      assert.equal(answer.response.warnings, undefined);
    }
  });

  const bad: Array<[string, string]> = [
    [CONFIG.skipInboundPorts, '70000'],
    [CONFIG.skipOutboundPorts, 'https'],
    [CONFIG.skipSubnets, '10.0.0.0/33'],
    [CONFIG.interceptionMode, 'nat'],
    [CONFIG.opaquePorts, 'postgres'],
    [CONFIG.opaquePorts, '0'],
    [CONFIG.proxyCpuRequest, 'lots'],
    [CONFIG.proxyCpuLimit, '-1'],
    [CONFIG.proxyMemoryRequest, '1Qi'],
    [CONFIG.proxyMemoryLimit, '64 Mi'],
    [CONFIG.proxyLogLevel, 'trace'],
    [CONFIG.nativeSidecar, 'yes'],
    [INJECT, 'true'],
  ];
  for (const [annotation, value] of bad) {
    it(`admits uninjected, with a warning and a log line, when ${annotation}: ${JSON.stringify(value)}`, async () => {
      const before = logLines.length;
      const { answer } = await admitted(reviewFor('emojivoto', { [annotation]: value }));
      assert.equal(answer.response.patch, undefined);
      assert.equal(answer.response.warnings?.length, 1);
      assert.match(answer.response.warnings![0]!, new RegExp(`^mesh: pod not injected, invalid annotation: ${annotation.replace('.', '\\.')}=`));
      const logged = logLines.slice(before).join('');
      assert.match(logged, new RegExp(`WARN invalid annotation: pod admitted uninjected pod=emojivoto/web-5f8d7c9b6d-<generated> uid=\\S+ annotation=${annotation}`));
    });
  }

  it('refuses nothing for a request larger than its limit: a CPU request over the limit is an annotation problem, not a broken pod', async () => {
    const { answer } = await admitted(reviewFor('emojivoto', { [CONFIG.proxyCpuRequest]: '2', [CONFIG.proxyCpuLimit]: '500m' }));
    assert.equal(answer.response.patch, undefined);
    assert.match(answer.response.warnings![0]!, /proxy-cpu-request="2" \(pod\): greater than the limit 500m/);
  });

  it("reports a bad namespace annotation as the namespace's", async () => {
    const { answer } = await admitted(reviewFor('broken-ns'));
    assert.match(answer.response.warnings![0]!, /skip-subnets="10\.0\.0\.0\/40" \(namespace\)/);
  });

  it('lets other operations and resources through untouched', async () => {
    const update = reviewFor('emojivoto');
    update.request.operation = 'UPDATE';
    assert.equal((await admitted(update)).answer.response.patch, undefined);
  });

  it('answers 400 with a code to a body that is not an AdmissionReview', async () => {
    const { status, json } = await postH1({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } });
    assert.equal(status, 400);
    assert.equal(json.code, 'MESH_API_MALFORMED');
  });
});
