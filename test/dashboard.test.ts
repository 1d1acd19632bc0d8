// The dashboard (issue 11) in a real headless Chromium: the page loads, lists
// the meshed workloads with the numbers the proxies' own /metrics give for a
// known load (b fails exactly a quarter of its requests), shows b's edges, and
// tap rows appear while traffic flows. A screenshot of each page is kept under
// test-artifacts/.
//
// Arrangement: pods a and b meshed with identity (meshedPodPair); a third pod,
// "dash", runs the tap service (a services file names a-1 and b-1), `mesh
// dashboard` on its loopback, and Chromium (test/fixtures/browser.js, steered
// line by line over stdin) in the same network namespace: the dashboard reads
// the proxies at their pod IPs, the browser reaches the dashboard at
// 127.0.0.1 as an operator's browser would.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { totalsOf, windowOf, type Totals } from '../cli/stat.js';
import { eventually, patienceMs, type Pod, type PodProcess } from './harness/index.js';
import { fixture, node } from './mesh.js';
import { meshedPodPair, type PodPair } from './pod-pair.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = (name: string): string => join(here, '..', 'cli', `${name}.js`);
/** The repository's root (dist/test/ → ../..): artefacts are kept there, gitignored. */
const ARTIFACTS = join(here, '..', '..', 'test-artifacts');
const APP_UID = 1000;
const PORT = 50750;

interface Row {
  data: Record<string, string>;
  cells: Record<string, { text: string; class: string }>;
}

/** Chromium in a pod, one command at a time (see test/fixtures/browser.ts). */
class Browser {
  #next = 0;
  constructor(readonly proc: PodProcess) {}

  async call(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#next;
    this.proc.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const m = await this.proc.waitForLine(new RegExp(`^\\{"id":${id},`));
    const r = JSON.parse(m.input!) as { ok: boolean; value?: unknown; error?: string };
    if (!r.ok) throw new Error(`browser ${op}: ${r.error}`);
    return r.value;
  }

  rows(selector: string): Promise<Row[]> {
    return this.call('rows', { selector }) as Promise<Row[]>;
  }

  pageErrors(): string[] {
    return this.proc.lines().filter((l) => l.startsWith('{"pageerror"'));
  }
}

describe('mesh dashboard in a headless Chromium', () => {
  let pair: PodPair;
  let a: Pod;
  let b: Pod;
  let dash: Pod;
  let dashboard: PodProcess;
  let browser: Browser;
  const url = `http://127.0.0.1:${PORT}/`;

  const curl = (urls: string[]) => a.execOk('curl', ['-sS', '--max-time', '10', ...urls], { uid: APP_UID });
  /** b's inbound totals as its proxy's /metrics says them, read from the dashboard's pod. */
  const bTotals = async (): Promise<Totals> => totalsOf((await dash.execOk('curl', ['-sf', '--max-time', '5', `http://${b.ipv4}:4191/metrics`])).stdout);

  before(async () => {
    pair = await meshedPodPair('mtls');
    ({ a, b } = pair);
    dash = await pair.lab.pod('dash');
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    const dir = await mkdtemp(join(tmpdir(), 'mesh-dashboard-'));
    const services = join(dir, 'services.yaml');
    writeFileSync(services, [
      'services:',
      '  - name: b',
      '    ports: [8080]',
      '    endpoints:',
      `      - { address: ${b.ipv4}, name: b-1, serviceAccount: b }`,
      '  - name: a',
      '    ports: [80]',
      '    endpoints:',
      `      - { address: ${a.ipv4}, name: a-1, serviceAccount: a }`,
    ].join('\n'));
    const tap = dash.spawn(node, [cli('mesh-controller'), 'tap', '--dir', pair.identity!.dir, '--source', `file:${services}`, '--listen', '127.0.0.1:8088']);
    await tap.waitForLine(/listening/);
    // A window longer than the test: every request it sends stays counted, so the numbers are exact, not rates at an edge.
    dashboard = dash.spawn(node, [cli('mesh'), 'dashboard', '--port', String(PORT), '--time-window', '10m', '--tap-url', 'https://127.0.0.1:8088', '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
    await dashboard.waitForLine(new RegExp(`available at http://127\\.0\\.0\\.1:${PORT}/`));
    const proc = dash.spawn(node, [fixture('browser.js')]);
    // A browser's first start reads a lot from disk: more patience than a server's.
    await proc.waitForLine(/^\{"ready":true/, patienceMs() * 3);
    browser = new Browser(proc);
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await pair?.destroy();
  });

  it('lists the meshed workloads with the numbers the proxies\' metrics give', async () => {
    await browser.call('goto', { url });
    // Two readings taken (a rate shown) before the load: the window starts before it.
    const rowOf = async (name: string): Promise<Row> => {
      const r = (await browser.rows('#workloads')).find((x) => x.data.name === name);
      assert.ok(r, `row ${name}`);
      return r;
    };
    await eventually(async () => assert.notEqual((await rowOf('b')).cells.rps!.text, '-'), { what: 'b read twice' });
    const before = await bTotals();
    // 20 requests from a to b, 5 of them answered 500: 75.00% success.
    await curl([...Array.from({ length: 15 }, (_, i) => `http://${b.ipv4}:8080/status/${i % 2 === 0 ? 200 : 204}`), ...Array.from({ length: 5 }, () => `http://${b.ipv4}:8080/status/500`)]);
    const seen = windowOf(before, await bTotals());
    assert.equal(seen.responses, 20, 'b\'s proxy counted the load');
    assert.equal(seen.success, 15);
    const expected = `${((seen.success / seen.responses) * 100).toFixed(2)}%`;
    assert.equal(expected, '75.00%');

    const b1 = await eventually(async () => {
      const r = await rowOf('b');
      assert.equal(r.data.requests, String(seen.responses));
      assert.equal(r.cells.success!.text, expected);
      return r;
    }, { what: 'the page to show b\'s load' });
    assert.match(b1.cells.success!.class, /\bbad\b/, 'under 95% is red');
    assert.equal(b1.cells.meshed!.text, '1/1');
    assert.match(b1.cells.rps!.text, /^\d+\.\drps$/);
    for (const p of ['p50', 'p95', 'p99']) assert.match(b1.cells[p]!.text, /^\d+(\.\d)?ms$/, p);
    const a1 = await rowOf('a');
    assert.equal(a1.cells.meshed!.text, '1/1');
    assert.equal(a1.cells.success!.text, '-', 'a served nothing');
    const shot = join(ARTIFACTS, 'dashboard.png');
    await browser.call('screenshot', { path: shot });
    assert.ok(statSync(shot).size > 1000);
    console.log(`screenshot: ${shot}`);
  });

  it('a workload\'s page shows its edges, and tap rows while traffic flows', async () => {
    await browser.call('click', { selector: '#workloads tr[data-name="b"] a' });
    await eventually(async () => {
      const inbound = await browser.rows('#edges-inbound');
      const fromA = inbound.find((r) => r.data.peer === 'a');
      assert.ok(fromA, 'a is a client of b');
      assert.equal(fromA.data.requests, '20');
      assert.equal(fromA.cells.success!.text, '75.00%');
      assert.equal(fromA.cells.identity!.text, pair.identity!.name('default', 'a'));
    }, { what: 'b\'s inbound edge from a' });

    await browser.call('click', { selector: '#tap-toggle' });
    await browser.call('waitFor', { selector: '#tap-note:text("watching b-1")' });
    const tapped = await eventually(async () => {
      // Traffic keeps flowing until rows show up: one request per look.
      await curl([`http://${b.ipv4}:8080/status/418`]);
      const rows = (await browser.rows('#tap')).filter((r) => r.cells.path?.text === '/status/418');
      const done = rows.find((r) => r.cells.status!.text === '418' && r.cells.duration!.text !== '-');
      assert.ok(done, `a finished /status/418 row among ${rows.length}`);
      return done;
    }, { what: 'tap rows' });
    assert.equal(tapped.cells.method!.text, 'GET');
    assert.equal(tapped.cells.dir!.text, 'in');
    assert.equal(tapped.cells.tls!.text, 'true');
    assert.match(tapped.cells.src!.text, new RegExp(`^${a.ipv4.replaceAll('.', '\\.')}:\\d+$`));
    assert.match(tapped.cells.latency!.text, /^\d+(\.\d+)?(µs|ms)$/);
    assert.match(tapped.cells.status!.class, /\bwarn\b/, '4xx is amber');
    const shot = join(ARTIFACTS, 'dashboard-workload.png');
    await browser.call('screenshot', { path: shot });
    console.log(`screenshot: ${shot}`);

    await browser.call('click', { selector: '#tap-toggle' });
    await browser.call('waitFor', { selector: '#tap-toggle:text("Start")' });
    assert.deepEqual(browser.pageErrors(), [], 'the page threw nothing');
  });

  it('a second dashboard on the same port says so and exits 1', async () => {
    const r = await dash.exec(node, [cli('mesh'), 'dashboard', '--port', String(PORT), '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /127\.0\.0\.1:50750 is in use .*\[MESH_DASHBOARD_LISTEN\]/);
    assert.equal(dashboard.child.exitCode, null, 'the first one still serves');
  });
});
