// A real Prometheus server scrapes both proxies' /metrics; its answers must
// match the traffic the test sent, request for request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, Lab, type Pod } from './harness/index.js';
import { fixture, meshInit, node, startProxy } from './mesh.js';


describe('Prometheus scraping the proxies', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let dir: string;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    await meshInit(b);
    await startProxy(a);
    await startProxy(b);
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    dir = mkdtempSync(join(tmpdir(), 'mesh-prom-'));
    chmodSync(dir, 0o777);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: mesh-proxy',
        `    static_configs: [{ targets: ['127.0.0.1:4191', '${b.ipv4}:4191'] }]`,
        '',
      ].join('\n'),
    );
    const prom = a.spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--web.listen-address=127.0.0.1:9090',
    ], { uid: 65534 });
    await prom.waitForLine(/Server is ready to receive web requests/);
  });
  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const query = async (q: string): Promise<number> => {
    const r = await a.execOk('curl', ['-sS', '--max-time', '5', '--get', '--data-urlencode', `query=${q}`, 'http://127.0.0.1:9090/api/v1/query']);
    const body = JSON.parse(r.stdout) as { data: { result: Array<{ value: [number, string] }> } };
    return body.data.result.length === 0 ? 0 : Number(body.data.result[0]!.value[1]);
  };

  it('sees exactly the requests sent, on both sides, with status and classification', async () => {
    const urls = [...Array(5).fill(`http://${b.ipv4}:8080/status/200`), ...Array(2).fill(`http://${b.ipv4}:8080/status/503`)];
    for (const u of urls) await a.execOk('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', u], { uid: 1000 });
    const target = `target_addr="${b.ipv4}:8080"`;
    await eventually(async () => assert.equal(await query(`sum(request_total{direction="outbound",${target}})`), 7), { what: 'outbound request_total = 7' });
    await eventually(async () => assert.equal(await query(`sum(request_total{direction="inbound",${target}})`), 7), { what: 'inbound request_total = 7' });
    assert.equal(await query(`sum(response_total{direction="inbound",${target},status_code="503",classification="failure"})`), 2);
    assert.equal(await query(`sum(response_total{direction="outbound",${target},status_code="200",classification="success"})`), 5);
    assert.equal(await query(`sum(response_latency_ms_count{direction="outbound",${target}})`), 7);
    // Every curl opened one connection through each proxy.
    assert.equal(await query(`sum(tcp_open_total{direction="outbound",${target}})`), 7);
    await eventually(async () => assert.equal(await query(`sum(tcp_close_total{direction="outbound",${target}})`), 7), { what: 'outbound tcp_close_total = 7' });
    // Between the proxies, requests share pooled keep-alive connections.
    const inboundConns = await query(`sum(tcp_open_total{direction="inbound",${target}})`);
    assert.ok(inboundConns >= 1 && inboundConns < 7, `inbound connections reused (${inboundConns})`);
    assert.ok((await query(`sum(tcp_read_bytes_total{direction="inbound",${target}})`)) > 7 * 50);
    assert.equal(await query('count(up{job="mesh-proxy"} == 1)'), 2, 'both proxies scraped');
  });
});
