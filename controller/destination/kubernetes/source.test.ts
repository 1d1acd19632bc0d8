// The Kubernetes source against the test API server (fake-api-server.ts; no
// real kube-apiserver runs here): it follows Services, EndpointSlices and Pods
// as they change, relists after a 410, and keeps its last state while the API
// server is down.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Update } from '../../../contract/destination.js';
import { eventually } from '../../../lab/eventually.js';
import { Log } from '../../../shared/log.js';
import { parseAuthority } from '../authority.js';
import { createResolver, type Resolver } from '../resolver.js';
import type { Source } from '../source.js';
import { FakeApiServer, pod, service, slice } from './fake-api-server.js';
import { createKubernetesSource, RESOURCES } from './source.js';

const WEB_ID = 'web.emojivoto.serviceaccount.identity.cluster.local';

describe('kubernetes source (test API server)', () => {
  let api: FakeApiServer;
  let source: Source;
  let resolver: Resolver;
  const logs: string[] = [];
  const seen: Update[] = [];
  const last = (): Update => seen.at(-1)!;
  const endpoints = () => {
    const u = last();
    return u.kind === 'snapshot' ? u.endpoints.map((e) => `${e.address}:${e.port} ${e.identity ?? '-'} ${e.name} ${e.zone}${e.opaquePorts ? ` opaque=${e.opaquePorts.join(',')}` : ''}`) : [u.kind];
  };

  before(async () => {
    api = await FakeApiServer.start();
    api.put(RESOURCES.services, service({ annotations: { 'config.mesh.io/timeout': '2s', 'config.mesh.io/retry-http': '5xx' } }));
    api.put(RESOURCES.slices, slice([{ ip: '10.244.1.5', pod: 'web-1' }]));
    api.put(RESOURCES.pods, pod('web-1', '10.244.1.5', { meshed: true }));
    api.put(RESOURCES.pods, pod('web-2', '10.244.1.6', { meshed: false }));
    source = await createKubernetesSource({ kubeconfig: api.kubeconfig, trustDomain: 'cluster.local', log: new Log('info', (l) => void logs.push(l)), backoffMinMs: 20, backoffMaxMs: 100 });
    resolver = createResolver([source]);
    resolver.subscribe(parseAuthority('web-svc:80', { contextNamespace: 'emojivoto' }), (u) => void seen.push(u));
    await eventually(() => seen.length === 1, { what: 'first snapshot' });
  });
  after(async () => {
    resolver.close();
    await source.close();
    await api.close();
  });

  it('answers a Service from its slices and pods: identity of meshed pods, zone, settings from annotations; lists then watches with bookmarks', async () => {
    assert.deepEqual(endpoints(), [`10.244.1.5:8080 ${WEB_ID} web-1 europe-west1-b`]);
    const u = last();
    assert.ok(u.kind === 'snapshot');
    assert.deepEqual(u.settings, { service: { name: 'web-svc', namespace: 'emojivoto' }, opaque: false, timeoutMs: 2000, retryHttp: '5xx' });
    assert.deepEqual(u.endpoints[0]!.labels, { app: 'web-svc', 'pod-template-hash': '5d9c8b7f6' });
    // Each watch starts once its list is in: the first snapshot can come before the last of them.
    await eventually(() => {
      for (const path of Object.values(RESOURCES)) {
        assert.ok(api.requests.includes(path), `listed ${path}`);
        assert.ok(api.requests.some((r) => r.startsWith(`${path}?watch=1&resourceVersion=`) && r.includes('allowWatchBookmarks=true')), `watched ${path}`);
      }
    });
    // By ClusterIP and by a pod's own address.
    const byVip = resolver.resolve(parseAuthority('10.96.14.20:80'));
    assert.ok(byVip.kind === 'snapshot' && byVip.endpoints.length === 1);
    const byPod = resolver.resolve(parseAuthority('10.244.1.6:8080'));
    assert.ok(byPod.kind === 'snapshot' && byPod.endpoints[0]!.identity === undefined && byPod.endpoints[0]!.name === 'web-2');
    assert.equal(resolver.resolve(parseAuthority('nope.emojivoto.svc.cluster.local:80')).kind, 'notFound');
  });

  it('follows slices, pods and the Service as they change', async () => {
    api.bookmark();
    api.put(RESOURCES.slices, slice([{ ip: '10.244.1.5', pod: 'web-1' }, { ip: '10.244.1.6', pod: 'web-2' }]));
    await eventually(() => endpoints().length === 2, { what: 'endpoint added' });
    assert.equal(endpoints()[1], '10.244.1.6:8080 - web-2 europe-west1-b');

    // web-2 rolled out again with the proxy injected, its own service account and opaque ports.
    api.put(RESOURCES.pods, pod('web-2', '10.244.1.6', { meshed: true, serviceAccount: 'web-v2', opaquePorts: 'http,9000-9001' }));
    await eventually(() => endpoints()[1] === '10.244.1.6:8080 web-v2.emojivoto.serviceaccount.identity.cluster.local web-2 europe-west1-b opaque=8080,9000,9001', { what: 'meshed-ness follows the pod' });

    api.put(RESOURCES.services, service({ annotations: { 'config.mesh.io/opaque-ports': '80' } }));
    await eventually(() => last().kind === 'snapshot' && (last() as { settings: { opaque: boolean; timeoutMs?: number } }).settings.opaque && (last() as { settings: { timeoutMs?: number } }).settings.timeoutMs === undefined, { what: 'service settings follow' });

    // Not ready: no new traffic.
    api.put(RESOURCES.slices, slice([{ ip: '10.244.1.5', pod: 'web-1', ready: false }, { ip: '10.244.1.6', pod: 'web-2' }]));
    await eventually(() => endpoints().length === 1 && endpoints()[0]!.startsWith('10.244.1.6'), { what: 'unready endpoint dropped' });
  });

  it('relists after 410 Gone and sees what changed meanwhile', async () => {
    const lists = () => api.requests.filter((r) => r === RESOURCES.slices).length;
    const before = lists();
    // History compacted, then every watch ends: re-watching from the old version gets an ERROR 410.
    api.compact();
    api.endWatches();
    api.put(RESOURCES.slices, slice([{ ip: '10.244.1.7', pod: 'web-3' }]));
    await eventually(() => lists() > before, { what: 'a relist' });
    await eventually(() => endpoints().join() === '10.244.1.7:8080 - web-3 europe-west1-b', { what: 'state after relist' });
    assert.ok(logs.some((l) => /watch expired, relisting/.test(l)));
  });

  it('keeps the last state while the API server is down, and catches up when it is back', async () => {
    const count = seen.length;
    const state = endpoints();
    await api.down();
    await eventually(() => logs.some((l) => /list\/watch failed, keeping the last known state/.test(l)), { what: 'failure noticed' });
    assert.equal(seen.length, count, 'no update while down');
    assert.deepEqual(endpoints(), state);
    assert.equal(resolver.resolve(parseAuthority('web-svc.emojivoto:80')).kind, 'snapshot');
    // Meanwhile the cluster moved on.
    api.put(RESOURCES.slices, slice([{ ip: '10.244.1.5', pod: 'web-1' }]));
    api.compact();
    await api.up();
    await eventually(() => endpoints().join() === `10.244.1.5:8080 ${WEB_ID} web-1 europe-west1-b`, { what: 'caught up after the outage' });
  });
});
