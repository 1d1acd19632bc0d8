// `mesh demo`, the README's first command, end to end (issue 11, "What it must
// show" 5): traffic succeeds, every meshed edge is mTLS, stat and tap are
// shown, and nothing is left behind; then --keep leaves it running (reachable
// from this host) until --down removes it all.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DemoReport } from '../cli/demo/index.js';

const mesh = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'mesh.js');
const run = promisify(execFile);
// Its own state dir, so a demo a user left running on this machine is not touched.
const env = { ...process.env, MESH_DEMO_STATE_DIR: mkdtempSync(join(tmpdir(), 'mesh-demo-test-')) };

const namespaces = async (): Promise<string> => (await run('ip', ['netns', 'list'])).stdout;
const hostLinks = async (): Promise<string> => (await run('ip', ['-o', 'addr', 'show', 'to', '198.18.0.1/24'])).stdout.trim();
const identityDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('mesh-identity-'));

function checkReport(r: DemoReport, stderr: string): void {
  assert.ok(r.traffic.ok >= 30, `traffic answered: ${JSON.stringify(r.traffic)}`);
  assert.equal(r.traffic.failed, 0, JSON.stringify(r.traffic));
  // gRPC to the inventory is balanced over both replicas.
  assert.deepEqual(Object.keys(r.traffic.inventory).sort(), ['inventory-1', 'inventory-2'], JSON.stringify(r.traffic));
  assert.ok(r.traffic.db > 0, 'orders recorded in PostgreSQL');
  // stat: every meshed workload, with requests where traffic goes.
  const names = r.stat.map((s) => s.name);
  for (const w of ['api', 'inventory', 'web']) assert.ok(names.includes(w), `stat shows ${w}: ${names.join(',')}`);
  for (const s of r.stat) assert.match(s.meshed, /^(\d+)\/\1$/, `${s.name} fully meshed`);
  const api = r.stat.find((s) => s.name === 'api')!;
  assert.ok(api.requests > 0 && api.success! > 0.8 && api.success! < 1, `api's success rate shows its 1-in-20 503s: ${JSON.stringify(api)}`);
  // tap: requests through api's proxy, in and out.
  const reqs = r.tap.filter((e) => e.kind === 'req');
  assert.ok(reqs.some((e) => e.kind === 'req' && e.proxy === 'in' && e.path.startsWith('/orders/')), 'tap shows api serving orders');
  assert.ok(reqs.some((e) => e.kind === 'req' && e.proxy === 'out' && e.path === '/mesh.demo.Inventory/Reserve'), 'tap shows api calling the inventory');
  assert.ok(r.tap.some((e) => e.kind === 'end' && e.grpcStatus === '0'), 'gRPC ends carry grpc-status');
  // mTLS on every edge between meshed pods: web → api, api → inventory ×2 and postgres, traffic → web.
  const edge = (from: string, to: string) => r.edges.filter((e) => e.from === from && e.to.startsWith(`${to}:`));
  for (const [from, to] of [['traffic', 'web'], ['web', 'api'], ['api', 'inventory'], ['api', 'postgres']] as const) {
    const es = edge(from, to);
    assert.ok(es.length > 0, `${from} → ${to} seen: ${JSON.stringify(r.edges)}\n${stderr}`);
    for (const e of es) assert.deepEqual([e.tls, e.serverId.split('.')[0]], ['true', to], `${from} → ${to} over mTLS as ${to}`);
  }
}

describe('mesh demo', () => {
  it('runs the app meshed (mTLS everywhere, balanced, opaque TCP), shows stat and tap, and leaves nothing behind', async () => {
    const dirsBefore = identityDirs();
    const r = await run(process.execPath, [mesh, 'demo', '-o', 'json', '--tap-seconds', '3'], { timeout: 180_000, env });
    checkReport(JSON.parse(r.stdout) as DemoReport, r.stderr);
    assert.match(r.stderr, /control plane running in pod\/mesh: identity .*destination .*tap/);
    assert.match(r.stderr, /demo removed/);
    const prefix = /network namespaces (\S+)-\*/.exec(r.stderr)?.[1];
    assert.ok(prefix, r.stderr);
    assert.ok(!(await namespaces()).includes(prefix), `no ${prefix}-* namespace left`);
    assert.equal(await hostLinks(), '', 'the host\'s link to the demo is gone');
    assert.deepEqual(identityDirs(), dirsBefore, 'no identity dir left');
  });

  it('--keep returns with it running (reachable from this host); --down removes everything', async () => {
    const dirsBefore = identityDirs();
    const k = await run(process.execPath, [mesh, 'demo', '--keep', '-o', 'json', '--tap-seconds', '2'], { timeout: 180_000, env });
    const kept = JSON.parse(k.stdout) as DemoReport & { state: { pid: number; prefix: string; tapUrl: string; anchors: string } };
    checkReport({ ...kept, traffic: { ok: 30, failed: 0, inventory: { 'inventory-1': 1, 'inventory-2': 1 }, db: 1, statuses: {} } }, k.stderr);
    assert.match(k.stderr, /mesh dashboard --tap-url https:\/\/\S+ --trust-anchors \S+/);
    assert.match(k.stderr, /mesh demo --down/);
    // Still running after the command returned: the supervisor, its namespaces, and the app answering this host.
    process.kill(kept.state.pid, 0);
    assert.ok((await namespaces()).includes(`${kept.state.prefix}-web`));
    const live = await run('curl', ['-sS', '-k', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `${kept.state.tapUrl}/live`]);
    assert.equal(live.stdout, '200', 'this host reaches the demo\'s tap service (what mesh tap, stat and the dashboard use)');

    const d = await run(process.execPath, [mesh, 'demo', '--down'], { timeout: 60_000, env });
    assert.match(d.stderr, /demo removed/);
    assert.throws(() => process.kill(kept.state.pid, 0), 'the supervisor is gone');
    assert.ok(!(await namespaces()).includes(kept.state.prefix), 'no namespace left');
    assert.equal(await hostLinks(), '', 'the host\'s link is gone');
    assert.ok(!existsSync(kept.state.anchors), 'its files are gone');
    assert.deepEqual(identityDirs(), dirsBefore);
    // Idempotent.
    const again = await run(process.execPath, [mesh, 'demo', '--down'], { env });
    assert.match(again.stderr, /no demo is running/);
  });
});
