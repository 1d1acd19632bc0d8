// Authorities as proxies send them, completed as a pod's DNS search path would.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../shared/api.js';
import { parseAuthority } from './authority.js';

describe('authority', () => {
  const svc = (raw: string, o: { contextNamespace?: string; clusterDomain?: string } = {}) => parseAuthority(raw, o).service;

  it('completes short names with the asking namespace and the cluster domain', () => {
    assert.deepEqual(svc('web.demo.svc.cluster.local:80'), { name: 'web', namespace: 'demo' });
    assert.deepEqual(svc('web.demo.svc.cluster.local.:80'), { name: 'web', namespace: 'demo' });
    assert.deepEqual(svc('web.demo.svc:80'), { name: 'web', namespace: 'demo' });
    assert.deepEqual(svc('web.demo:80'), { name: 'web', namespace: 'demo' });
    assert.deepEqual(svc('web:80', { contextNamespace: 'demo' }), { name: 'web', namespace: 'demo' });
    assert.deepEqual(svc('Web.Demo.svc.corp.example:80', { clusterDomain: 'corp.example' }), { name: 'web', namespace: 'demo' });
    // Without a namespace to complete it, a bare name is only a host name.
    assert.equal(svc('web:80'), undefined);
    // Another cluster domain's name, or a plain DNS name, is no Service of ours.
    assert.equal(svc('web.demo.svc.other.domain:80'), undefined);
    assert.equal(svc('api.mesh.local:80'), undefined);
  });

  it('reads addresses, IPv6 in brackets', () => {
    assert.deepEqual(parseAuthority('10.0.0.1:8080'), { raw: '10.0.0.1:8080', host: '10.0.0.1', port: 8080, address: '10.0.0.1' });
    assert.equal(parseAuthority('[FD00::1]:443').address, 'fd00::1');
    assert.equal(parseAuthority('[fd00::1]:443').service, undefined);
  });

  it('refuses what is not host:port', () => {
    for (const raw of ['web', 'web:', ':80', 'web:0', 'web:70000', 'fd00::1:80', '[nope]:80', 'a..b:80', 'a b:80']) {
      assert.throws(() => parseAuthority(raw), (e: unknown) => e instanceof ApiError && e.status === 400 && e.code === 'MESH_DESTINATION_AUTHORITY', raw);
    }
  });
});
