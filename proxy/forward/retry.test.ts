import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoutePolicy } from './retry.js';

describe('route policy from authority settings', () => {
  it('5xx, gateway-error and lists of codes', () => {
    const all = new RoutePolicy({ opaque: false, retryHttp: '5xx' });
    assert.deepEqual([499, 500, 503, 599].map((s) => all.retriesStatus(s)), [false, true, true, true]);
    assert.equal(all.retryLimit, 1, "Linkerd's default limit");
    const gw = new RoutePolicy({ opaque: false, retryHttp: 'gateway-error', retryLimit: 3 });
    assert.deepEqual([500, 502, 503, 504].map((s) => gw.retriesStatus(s)), [false, true, true, true]);
    assert.equal(gw.retryLimit, 3);
    const list = new RoutePolicy({ opaque: false, retryHttp: [429, 503] });
    assert.deepEqual([429, 500, 503].map((s) => list.retriesStatus(s)), [true, false, true]);
  });

  it('gRPC codes by name or number', () => {
    const p = new RoutePolicy({ opaque: false, retryGrpc: ['unavailable', '4', 'RESOURCE_EXHAUSTED'] });
    assert.deepEqual(['14', '4', '8', '0', '13', 'x'].map((c) => p.retriesGrpc(c)), [true, true, true, false, false, false]);
    assert.equal(p.retriesStatus(503), false);
  });

  it('no retry settings: nothing retried, limit 0; a timeout alone', () => {
    const p = new RoutePolicy({ opaque: false, timeoutMs: 250 });
    assert.equal(p.retryLimit, 0);
    assert.equal(p.timeoutMs, 250);
    assert.equal(p.retriesStatus(503), false);
  });
});
