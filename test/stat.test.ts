// `mesh stat` agrees with the load sent (issue 11, "What it must show" 3): a
// server failing a known fraction shows that success rate exactly and the
// request count exactly; a constant load shows its rate within 10%; both by
// reading the proxies directly and from a real Prometheus scraping them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { fixture, node } from './mesh.js';
import { meshedPodPair, type PodPair } from './pod-pair.js';

const cli = (name: string): string => join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', `${name}.js`);

interface Row {
  name: string;
  meshed: string;
  requests: number;
  success: number | undefined;
  rps: number | undefined;
  p50: number | undefined;
  tcpConn: number;
}

describe('mesh stat', () => {
  let pair: PodPair;
  let a: Pod;
  let b: Pod;
  let ops: Pod;
  let dir: string;
  const procs: PodProcess[] = [];
  /** Every request sent to b so far: [total, succeeded]. */
  const sent = { total: 0, ok: 0 };

  const stat = (args: string[]): PodProcess => {
    const p = ops.spawn(node, [cli('mesh'), 'stat', ...args, '-o', 'json', '--tap-url', `https://${ops.ipv4}:8088`, '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
    procs.push(p);
    return p;
  };
  const rowsOf = async (p: PodProcess): Promise<Row[]> => {
    await eventually(() => assert.notEqual(p.child.exitCode, null, 'mesh stat ended'), { timeoutMs: 60_000 });
    assert.equal(p.child.exitCode, 0, p.lines().join('\n'));
    // stdout and stderr come interleaved: the JSON is the block from its opening bracket to its closing one.
    const lines = p.lines();
    return JSON.parse(lines.slice(lines.indexOf('['), lines.lastIndexOf(']') + 1).join('\n')) as Row[];
  };
  /** `count` requests at `rps`, 3 in 10 answered 503 by b's app; resolves when all are answered. */
  const load = async (rps: number, count: number): Promise<void> => {
    const r = await a.execOk(node, [fixture('rate-client.js'), `http://${b.ipv4}:8080`, String(rps), String(count), '3'], { uid: 1000, timeoutMs: 120_000 });
    const out = JSON.parse(r.stdout.trim()) as { statuses: Record<string, number>; errors: number };
    assert.deepEqual(out.statuses, { 200: count - (count / 10) * 3, 503: (count / 10) * 3 });
    sent.total += count;
    sent.ok += count - (count / 10) * 3;
  };
  const promQuery = async (q: string): Promise<number> => {
    const r = await ops.execOk('curl', ['-sS', '--max-time', '5', '--get', '--data-urlencode', `query=${q}`, 'http://127.0.0.1:9090/api/v1/query']);
    const body = JSON.parse(r.stdout) as { data: { result: Array<{ value: [number, string] }> } };
    return body.data.result.length === 0 ? 0 : Number(body.data.result[0]!.value[1]);
  };

  before(async () => {
    pair = await meshedPodPair('mtls');
    ({ a, b } = pair);
    ops = await pair.lab.pod('ops');
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    dir = await mkdtemp(join(tmpdir(), 'mesh-stat-'));
    await chmod(dir, 0o777);
    const services = join(dir, 'services.yaml');
    await writeFile(services, [
      'services:',
      '  - name: b',
      '    ports: [8080]',
      '    endpoints:',
      `      - { address: ${b.ipv4}, name: b-1, serviceAccount: b }`,
      '  - name: a',
      '    ports: [80]',
      '    endpoints:',
      `      - { address: ${a.ipv4}, name: a-1, serviceAccount: a }`,
      '      - { address: 198.18.77.7, name: a-2 }',
    ].join('\n'));
    const tap = ops.spawn(node, [cli('mesh-controller'), 'tap', '--dir', pair.identity!.dir, '--source', `file:${services}`, '--listen', '0.0.0.0:8088']);
    procs.push(tap);
    await tap.waitForLine(/listening/);
    // Prometheus labels each proxy's target with its namespace and pod, as linkerd-viz's scrape config does.
    await writeFile(join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: mesh-proxy',
      '    static_configs:',
      `      - { targets: ['${b.ipv4}:4191'], labels: { namespace: default, pod: b-1 } }`,
      `      - { targets: ['${a.ipv4}:4191'], labels: { namespace: default, pod: a-1 } }`,
      '',
    ].join('\n'));
    const prom = ops.spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090'], { uid: 65534 });
    procs.push(prom);
    await prom.waitForLine(/Server is ready to receive web requests/);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await pair?.destroy();
  });

  it('reading the proxies: the exact count and success rate of what came in during the window', async () => {
    const s = stat(['deploy/b', '-t', '6s']);
    await s.waitForLine(/^reading 1 proxy over 6s/);
    await load(50, 100); // 2 s of it, well inside the window
    const [row] = await rowsOf(s);
    console.log(`# direct: ${JSON.stringify(row)}`);
    assert.equal(row!.name, 'b');
    assert.equal(row!.meshed, '1/1');
    assert.equal(row!.requests, 100);
    assert.equal(row!.success, 0.7);
    assert.ok(row!.p50! > 0);
  });

  it('reading the proxies: a constant 40 rps shows as 40 rps, within 10%', async () => {
    const running = load(40, 400); // 10 s
    const s = stat(['deploy/b', '-t', '5s']);
    const [row] = await rowsOf(s);
    await running;
    console.log(`# direct rate: ${JSON.stringify(row)}`);
    assert.ok(row!.rps! >= 36 && row!.rps! <= 44, `rps ${row!.rps}`);
  });

  it('edges: --to shows a\'s requests to b; MESHED counts unmeshed pods; --from narrows b\'s by client', async () => {
    const to = stat(['deploy/a', '--to', 'svc/b', '-t', '4s']);
    await to.waitForLine(/^reading 1 proxy over 4s/);
    await load(50, 50);
    const [row] = await rowsOf(to);
    assert.deepEqual([row!.name, row!.meshed, row!.requests, row!.success], ['a', '1/2', 50, 0.7]);
    const from = stat(['deploy/b', '--from', 'deploy/a', '-t', '4s']);
    await from.waitForLine(/^reading/);
    await load(50, 50);
    const [fromRow] = await rowsOf(from);
    assert.deepEqual([fromRow!.requests, fromRow!.success], [50, 0.7]);
  });

  it('from Prometheus: the same exact counts, and the rate within 10%', async () => {
    // Everything sent so far, once Prometheus has scraped all of it.
    await eventually(async () => assert.equal(await promQuery('sum(response_total{direction="inbound",pod="b-1"})'), sent.total), { timeoutMs: 20_000 });
    const all = stat(['deploy/b', '--prometheus-url', 'http://127.0.0.1:9090', '-t', '10m']);
    const [row] = await rowsOf(all);
    console.log(`# prometheus, all: ${JSON.stringify(row)} sent ${JSON.stringify(sent)}`);
    assert.equal(row!.requests, sent.total);
    assert.equal(row!.success, sent.ok / sent.total);
    // A constant 40 rps for 20 s; the last 15 s of it once Prometheus holds them.
    const base = sent.total;
    const running = load(40, 800);
    await eventually(async () => assert.ok((await promQuery('sum(response_total{direction="inbound",pod="b-1"})')) >= base + 40 * 16), { timeoutMs: 40_000 });
    const recent = stat(['deploy/b', '--prometheus-url', 'http://127.0.0.1:9090', '-t', '15s']);
    const [r] = await rowsOf(recent);
    console.log(`# prometheus rate: ${JSON.stringify(r)}`);
    assert.ok(r!.rps! >= 36 && r!.rps! <= 44, `rps ${r!.rps}`);
    await running;
  });

  it('a resource with no pods says so and exits 1', async () => {
    const r = await ops.exec(node, [cli('mesh'), 'stat', 'deploy/nothing', '--tap-url', `https://${ops.ipv4}:8088`, '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /deploy\/nothing in default has no pods \[MESH_STAT_NO_PODS\]/);
  });
});
