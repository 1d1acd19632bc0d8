// Tap targets from the Kubernetes API, against the test API server (no real
// kube-apiserver runs here): deployments by their ReplicaSet owner (or app
// label), Services by selector, meshed pods with their identity.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeApiServer, pod, service } from '../destination/kubernetes/fake-api-server.js';
import { RESOURCES } from '../destination/kubernetes/source.js';
import { ApiError } from '../../shared/api.js';
import { KubernetesTargets } from './kubernetes-targets.js';
import { parseResource } from './targets.js';

describe('tap targets from the Kubernetes API', () => {
  let api: FakeApiServer;
  let targets: KubernetesTargets;

  before(async () => {
    api = await FakeApiServer.start();
    api.put(RESOURCES.services, service());
    api.put(RESOURCES.pods, pod('web-1', '10.244.1.5', { meshed: true }));
    api.put(RESOURCES.pods, pod('web-2', '10.244.1.6', { meshed: false }));
    // A Deployment's pod as a cluster names it: owned by its ReplicaSet <deployment>-<pod-template-hash>.
    const p = pod('api-7c9d8f6b5-x2k4q', '10.244.1.9', { meshed: true, serviceAccount: 'api' });
    api.put(RESOURCES.pods, { ...p, metadata: { ...p.metadata, labels: { 'pod-template-hash': '7c9d8f6b5' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-7c9d8f6b5', controller: true }] } });
    targets = await KubernetesTargets.create({ kubeconfig: api.kubeconfig, trustDomain: 'cluster.local' });
  });
  after(async () => {
    await api.close();
  });

  const r = (text: string) => parseResource(text, 'emojivoto');

  it('a deployment by its ReplicaSet owner, or its app label; only meshed pods are tap targets', async () => {
    assert.deepEqual(await targets.targets(r('deploy/api')), [{ pod: 'api-7c9d8f6b5-x2k4q', namespace: 'emojivoto', address: '10.244.1.9', identity: 'api.emojivoto.serviceaccount.identity.cluster.local' }]);
    assert.deepEqual((await targets.targets(r('deploy/web-svc'))).map((t) => t.pod), ['web-1']);
    assert.deepEqual((await targets.pods(r('deploy/web-svc'))).map((p) => [p.pod, p.identity !== undefined]), [['web-1', true], ['web-2', false]]);
  });

  it('a Service by its selector, a pod by name, a namespace whole; addresses for --to', async () => {
    assert.deepEqual((await targets.pods(r('svc/web-svc'))).map((p) => p.pod).sort(), ['web-1', 'web-2']);
    assert.deepEqual((await targets.pods(r('pod/web-2'))).map((p) => p.address), ['10.244.1.6']);
    assert.deepEqual((await targets.pods(r('ns/emojivoto'))).map((p) => p.deployment).sort(), ['api', 'web-svc', 'web-svc']);
    assert.deepEqual(await targets.addresses(parseResource('deploy/web-svc', 'elsewhere')), []);
  });

  it('the API server down is a 503 naming it, not an empty answer', async () => {
    await api.down();
    try {
      await assert.rejects(targets.targets(r('deploy/api')), (e: unknown) => e instanceof ApiError && e.status === 503 && e.code === 'MESH_TAP_SOURCE');
    } finally {
      await api.up();
    }
  });
});
