// `mesh install`: every object valid against the Kubernetes schema, in an
// order kubectl can apply, the webhook's caBundle verifying the serving
// certificate the injector will present, RBAC exactly what is justified.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { assertValid } from '../test/kubernetes-schema.js';
import { runIdentityInit } from './identity-init.js';
import { runInstall, uninstallYaml, type InstallOptions } from './install.js';

const options: InstallOptions = { namespace: 'mesh', image: 'mesh:test', trustDomain: 'cluster.local', nativeSidecar: true, webhookCertValidityMs: 8760 * 3_600_000 };

async function install(o: Partial<InstallOptions> = {}): Promise<{ code: number; objects: any[]; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runInstall({ ...options, ...o }, { now: () => new Date() }, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err, objects: parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o !== null) };
}

const find = (objects: any[], kind: string, name: string): any => objects.find((o) => o.kind === kind && o.metadata.name === name);
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

describe('mesh install', () => {
  it('prints valid objects: namespace first, webhook configuration last, all namespaced ones in the namespace', async () => {
    const { code, objects, out } = await install();
    assert.equal(code, 0);
    for (const o of objects) assertValid(o);
    assert.equal(objects[0].kind, 'Namespace');
    assert.equal(objects.at(-1).kind, 'MutatingWebhookConfiguration');
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
    for (const o of objects) assert.equal(o.metadata.namespace, clusterScoped.has(o.kind) ? undefined : 'mesh', `${o.kind}/${o.metadata.name}`);
    // Anything a Deployment mounts or runs as exists before it.
    const index = (kind: string, name: string): number => objects.findIndex((o) => o.kind === kind && o.metadata.name === name);
    assert.ok(index('Secret', 'mesh-identity-issuer') < index('Deployment', 'mesh-identity'));
    assert.ok(index('ServiceAccount', 'mesh-injector') < index('Deployment', 'mesh-injector'));
    assert.equal(objects[0].metadata.labels['config.mesh.io/admission-webhooks'], 'disabled', 'the control plane is not injected');
    assert.match(out, /# create tokenreviews: /, 'each RBAC grant says why');
  });

  it("webhook: Ignore, 10 s, no side effects, pods only, kube-system and opted-out namespaces excluded, caBundle verifying the injector's certificate for its Service name", async () => {
    const { objects } = await install();
    const webhook = find(objects, 'MutatingWebhookConfiguration', 'mesh-injector-webhook').webhooks[0];
    assert.equal(webhook.failurePolicy, 'Ignore');
    assert.equal(webhook.timeoutSeconds, 10);
    assert.equal(webhook.sideEffects, 'None');
    assert.deepEqual(webhook.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    assert.deepEqual(webhook.namespaceSelector.matchExpressions, [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'mesh'] },
      { key: 'config.mesh.io/admission-webhooks', operator: 'NotIn', values: ['disabled'] },
    ]);
    assert.deepEqual(webhook.clientConfig.service, { name: 'mesh-injector', namespace: 'mesh', path: '/inject', port: 443 });
    const ca = new X509Certificate(unb64(webhook.clientConfig.caBundle));
    const [leaf, issuer] = unb64(find(objects, 'Secret', 'mesh-injector-tls').data['tls.crt']).split(/(?<=-----END CERTIFICATE-----\n)/).map((p) => new X509Certificate(p));
    assert.ok(leaf!.verify(issuer!.publicKey) && issuer!.verify(ca.publicKey), 'leaf → issuer → caBundle');
    assert.equal(leaf!.checkHost('mesh-injector.mesh.svc'), 'mesh-injector.mesh.svc');
    const service = find(objects, 'Service', 'mesh-injector');
    assert.equal(service.spec.ports[0].port, 443);
    const podLabels = find(objects, 'Deployment', 'mesh-injector').spec.template.metadata.labels;
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(podLabels[k], v, `the Service selects the injector's pods by ${k}`);
    assert.equal(service.spec.ports[0].targetPort, find(objects, 'Deployment', 'mesh-injector').spec.template.spec.containers[0].ports[0].containerPort);
  });

  it('grants exactly: identity create tokenreviews, injector get namespaces, destination read services/pods/endpointslices', async () => {
    const { objects } = await install();
    const rules = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').map((r) => [r.metadata.name, r.rules]);
    assert.deepEqual(rules, [
      ['mesh-identity', [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }]],
      ['mesh-injector', [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }]],
      ['mesh-destination', [
        { apiGroups: [''], resources: ['services', 'pods'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      ]],
    ]);
    for (const b of objects.filter((o) => o.kind === 'ClusterRoleBinding')) assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: b.metadata.name, namespace: 'mesh' }]);
  });

  it("mounts for each controller exactly the files its flags name", async () => {
    const { objects } = await install();
    const identity = find(objects, 'Deployment', 'mesh-identity').spec.template.spec;
    assert.deepEqual(identity.volumes[0].secret.items.map((i: any) => i.path).sort(), ['ca.crt', 'issuer.crt', 'issuer.key'], 'the layout mesh-controller identity --dir reads');
    const injector = find(objects, 'Deployment', 'mesh-injector').spec.template.spec;
    const args: string[] = injector.containers[0].args;
    const mounts: Array<{ mountPath: string }> = injector.containers[0].volumeMounts;
    for (const flag of ['--tls-cert', '--tls-key', '--trust-anchors']) {
      const path = args[args.indexOf(flag) + 1]!;
      assert.ok(mounts.some((m) => path.startsWith(`${m.mountPath}/`)), `${flag} ${path} is mounted`);
    }
  });

  it('installs the CA of an identity directory (mesh identity init) unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-install-'));
    try {
      const sink = { stdout: () => {}, stderr: () => {} };
      const init = { trustDomain: 'cluster.local', dir: join(dir, 'id'), anchorValidityMs: 87_600 * 3_600_000, issuerValidityMs: 8_760 * 3_600_000, output: 'pem' as const, force: false, rotateTokenKey: false, namespace: 'mesh' };
      assert.equal(await runIdentityInit(init, { now: () => new Date() }, sink), 0);
      const { code, objects } = await install({ identityDir: join(dir, 'id') });
      assert.equal(code, 0);
      const { readFileSync } = await import('node:fs');
      assert.equal(find(objects, 'ConfigMap', 'mesh-identity-trust-roots').data['ca-bundle.crt'], readFileSync(join(dir, 'id', 'ca.crt'), 'utf8'));
      assert.equal(unb64(find(objects, 'MutatingWebhookConfiguration', 'mesh-injector-webhook').webhooks[0].clientConfig.caBundle), readFileSync(join(dir, 'id', 'ca.crt'), 'utf8'));
      const missing = await install({ identityDir: join(dir, 'nope') });
      assert.equal(missing.code, 2);
      assert.match(missing.err, /^mesh install: cannot read .*nope\/ca\.crt \(ENOENT\).* \[MESH_IDENTITY_FILES\]\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uninstall lists the same objects, webhook configuration first, namespace last', async () => {
    const { objects } = await install();
    const refs = parseAllDocuments(uninstallYaml('mesh')).map((d) => d.toJS()).filter((o) => o !== null);
    assert.deepEqual(refs.map((r) => `${r.kind}/${r.metadata.name}`), objects.map((o) => `${o.kind}/${o.metadata.name}`).reverse());
  });
});
