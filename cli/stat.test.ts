import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyMetrics } from '../proxy/metrics.js';
import { histogramQuantile, parseMetrics } from './prom-text.js';
import { statCells, statRow } from './stat.js';

describe('stat from a proxy\'s metrics', () => {
  it('parses exposition text with escaped labels', () => {
    const s = parseMetrics('# HELP x y\nrequest_total{authority="a\\"b",direction="inbound"} 3\nup 1\n');
    assert.deepEqual(s, [
      { name: 'request_total', labels: { authority: 'a"b', direction: 'inbound' }, value: 3 },
      { name: 'up', labels: {}, value: 1 },
    ]);
  });

  it('interpolates quantiles inside a bucket', () => {
    const buckets = [{ le: 10, count: 0 }, { le: 20, count: 10 }, { le: Infinity, count: 10 }];
    assert.equal(histogramQuantile(0.5, buckets), 15);
    assert.equal(histogramQuantile(0.5, []), undefined);
  });

  it('summarizes the inbound side from real metrics', async () => {
    const m = new ProxyMetrics(false);
    const conn = m.connection({ direction: 'inbound', target_addr: '198.18.0.3:8080', tls: 'no_identity', no_tls_reason: 'disabled' });
    const route = m.route(conn, 'api:8080');
    for (let i = 0; i < 4; i++) {
      route.request();
      route.responseHeaders(i === 3 ? 500 : 200, 12);
      route.responseEnd(i === 3 ? 500 : 200, undefined, undefined);
    }
    const out = m.connection({ direction: 'outbound', target_addr: '198.18.0.9:80', tls: 'no_identity' });
    m.route(out, 'other').responseEnd(200, undefined, undefined);
    const row = statRow('api', await m.registry.metrics(), 2);
    assert.equal(row.requests, 4, 'outbound traffic is not counted');
    assert.equal(row.success, 0.75);
    assert.equal(row.rps, 2);
    assert.ok(row.p50! > 10 && row.p50! <= 20);
    assert.equal(row.tcpConn, 1);
    assert.deepEqual(statCells(row).slice(0, 4), ['api', '1/1', '75.00%', '2.0rps']);
  });
});

describe('stat windows and PromQL', () => {
  it('a window is the difference of two readings; a proxy restarted meanwhile counts from zero', async () => {
    const { windowOf, emptyTotals } = await import('./stat.js');
    const t = (responses: number, success: number, le10: number) => ({ ...emptyTotals(), responses, success, buckets: new Map([[10, le10], [Infinity, responses]]), tcpOpen: 2 });
    const w = windowOf(t(100, 90, 50), t(160, 140, 80));
    assert.deepEqual([w.responses, w.success, w.buckets.get(10), w.buckets.get(Infinity)], [60, 50, 30, 60]);
    const restarted = windowOf(t(100, 90, 50), t(7, 7, 7));
    assert.deepEqual([restarted.responses, restarted.success], [7, 7]);
  });

  it('selects series by direction, destination host and client identity', async () => {
    const { selects } = await import('./stat.js');
    assert.ok(selects({ direction: 'outbound', toHosts: new Set(['fd00::7']) }, { direction: 'outbound', target_addr: '[fd00::7]:80' }));
    assert.ok(!selects({ direction: 'outbound', toHosts: new Set(['10.0.0.7']) }, { direction: 'outbound', target_addr: '10.0.0.70:80' }));
    assert.ok(selects({ direction: 'inbound', fromIdentities: new Set(['a.default']) }, { direction: 'inbound', client_id: 'a.default' }));
    assert.ok(!selects({ direction: 'inbound' }, { direction: 'outbound' }));
  });

  it('PromQL matchers escape regex characters once for the regex and once for the string', async () => {
    const { promMatchers, promQueries } = await import('./stat.js');
    const m = promMatchers('default', ['b-1', 'b.2'], { direction: 'outbound', toHosts: new Set(['198.18.0.3']) });
    assert.equal(m, 'direction="outbound",namespace="default",pod=~"b-1|b\\\\.2",target_addr=~"198\\\\.18\\\\.0\\\\.3:[0-9]+"');
    assert.equal(promQueries(m, '1m').responsesBefore, `sum(response_total{${m}} offset 1m)`);
  });
});
