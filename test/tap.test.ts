// Tap (issue 11, "What it must show" 1, the proxy's part): a watcher holding
// the tap service's certificate sees every HTTP/1, h2 and gRPC request through
// the server proxy as req / rsp / end lines, with both identities; filters
// narrow; a request still in flight shows req and rsp without end until it
// ends; any other identity is refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCsr, issueLeaf, loadSigner, tlsKeyPem } from '../ca/index.js';
import type { TapEvent } from '../contract/tap.js';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { fixture, node, startEcho, tcpClient } from './mesh.js';

const cli = (name: string): string => join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', `${name}.js`);
import { meshedPodPair, type PodPair } from './pod-pair.js';

const APP_UID = 1000;

describe('tap on the server proxy', () => {
  let pair: PodPair;
  let a: Pod;
  let b: Pod;
  let watcherPod: Pod;
  let certs: string;
  let tapId: string;
  const watchers: PodProcess[] = [];

  const leaf = async (file: string, name: string): Promise<void> => {
    const dir = pair.identity!.dir;
    const signer = await loadSigner({ certPem: await readFile(join(dir, 'issuer.crt'), 'utf8'), keyPem: await readFile(join(dir, 'issuer.key'), 'utf8') });
    const csr = await createCsr(name);
    const issued = await issueLeaf({ issuer: signer, csr: csr.pem, identity: name });
    await writeFile(join(certs, `${file}.crt`), issued.chainPem, { mode: 0o644 });
    await writeFile(join(certs, `${file}.key`), tlsKeyPem(csr.privateKey), { mode: 0o644 });
  };

  /** A watcher of b's proxy as `file`'s identity; resolves once it is watching (or refused). */
  const watch = async (file: string, request: object = {}): Promise<PodProcess> => {
    const p = watcherPod.spawn(node, [
      fixture('tap-client.js'), `https://${b.ipv4}:4190`, pair.identity!.name('default', 'b'),
      join(pair.identity!.dir, 'ca.crt'), join(certs, `${file}.crt`), join(certs, `${file}.key`), JSON.stringify(request),
    ]);
    watchers.push(p);
    await p.waitForLine(/^\{"(watching|status|error)"/);
    return p;
  };
  const events = (p: PodProcess): TapEvent[] => p.lines().filter((l) => l.startsWith('{"kind"')).map((l) => JSON.parse(l) as TapEvent);
  const byId = (p: PodProcess, id: string): TapEvent[] => events(p).filter((e) => 'id' in e && e.id === id);
  const reqFor = (p: PodProcess, path: string): (TapEvent & { kind: 'req' }) | undefined =>
    events(p).find((e): e is TapEvent & { kind: 'req' } => e.kind === 'req' && e.path === path);
  const curl = (args: string[]) => a.execOk('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', ...args], { uid: APP_UID });

  before(async () => {
    pair = await meshedPodPair('mtls');
    ({ a, b } = pair);
    watcherPod = await pair.lab.pod('watcher');
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    certs = await mkdtemp(join(tmpdir(), 'mesh-tap-certs-'));
    await chmod(certs, 0o755);
    tapId = pair.identity!.name('mesh', 'mesh-tap');
    await leaf('tap', tapId);
    await leaf('impostor', pair.identity!.name('default', 'impostor'));
  });
  after(async () => {
    for (const w of watchers) await w.stop();
    await pair?.destroy();
  });

  it('refuses any identity but the tap service\'s', async () => {
    const w = await watch('impostor');
    const r = JSON.parse(w.lines().find((l) => l.startsWith('{"status"'))!) as { status: number; body: { code: string; message: string } };
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'MESH_TAP_FORBIDDEN');
    assert.match(r.body.message, new RegExp(`impostor\\.default`));
    await pair.proxyB.waitForLine(/tap refused .*client=impostor\.default/);
  });

  it('shows HTTP/1, h2 and gRPC requests with both identities, in req → rsp → end order', async () => {
    const w = await watch('tap');
    await curl([`http://${b.ipv4}:8080/bytes/1234`]);
    await curl(['--http2-prior-knowledge', `http://${b.ipv4}:8081/status/404`]);
    const g = await a.execOk(node, [fixture('grpc-client.js'), `${b.ipv4}:8082`], { uid: APP_UID });
    assert.match(g.stdout, /echo:/);
    const clientId = pair.identity!.name('default', 'a');
    await eventually(() => {
      const h1 = reqFor(w, '/bytes/1234');
      assert.ok(h1, 'HTTP/1 request tapped');
      assert.deepEqual(byId(w, h1.id).map((e) => e.kind), ['req', 'rsp', 'end']);
    });
    const h1 = reqFor(w, '/bytes/1234')!;
    assert.equal(h1.proxy, 'in');
    assert.equal(h1.tls, 'true');
    assert.equal(h1.clientId, clientId);
    assert.equal(h1.method, 'GET');
    assert.equal(h1.authority, `${b.ipv4}:8080`);
    assert.match(h1.src, new RegExp(`^${a.ipv4.replaceAll('.', '\\.')}:\\d+$`));
    const [, rsp, end] = byId(w, h1.id) as [TapEvent, TapEvent & { kind: 'rsp' }, TapEvent & { kind: 'end' }];
    assert.equal(rsp.status, 200);
    assert.equal(end.responseBytes, 1234);
    assert.ok(end.durationUs >= rsp.latencyUs);
    await eventually(() => {
      const h2 = reqFor(w, '/status/404');
      assert.ok(h2);
      assert.equal((byId(w, h2.id)[1] as { status: number }).status, 404);
      const unary = events(w).find((e): e is TapEvent & { kind: 'req' } => e.kind === 'req' && e.path.endsWith('/Unary'));
      assert.ok(unary, 'gRPC call tapped');
      const failing = events(w).filter((e) => e.kind === 'end' && e.grpcStatus !== undefined).map((e) => (e as { grpcStatus: string }).grpcStatus);
      assert.ok(failing.includes('0') && failing.includes('9'), `grpc-status OK and FAILED_PRECONDITION seen: ${failing.join(',')}`);
    });
  });

  it('every filter narrows what a watcher sees', async () => {
    const post = await watch('tap', { filter: { method: 'POST' } });
    const prefix = await watch('tap', { filter: { pathPrefix: '/status/2' } });
    const auth = await watch('tap', { filter: { authority: `${b.ipv4}:8081` } });
    const outbound = await watch('tap', { filter: { direction: 'outbound' } });
    const fromA = await watch('tap', { filter: { peer: a.ipv4 } });
    const fromElsewhere = await watch('tap', { filter: { peer: '198.18.99.99' } });
    await curl(['-X', 'POST', '-d', 'x', `http://${b.ipv4}:8080/status/201`]);
    await curl([`http://${b.ipv4}:8080/status/202`]);
    await curl(['--http2-prior-knowledge', `http://${b.ipv4}:8081/status/303`]);
    const paths = (p: PodProcess): string[] => events(p).filter((e) => e.kind === 'req').map((e) => (e as { path: string }).path).sort();
    await eventually(() => assert.deepEqual(paths(fromA), ['/status/201', '/status/202', '/status/303']));
    assert.deepEqual(paths(post), ['/status/201']);
    assert.deepEqual(paths(prefix), ['/status/201', '/status/202']);
    assert.deepEqual(paths(auth), ['/status/303']);
    assert.deepEqual(paths(outbound), [], 'b\'s proxy saw these inbound only');
    assert.deepEqual(paths(fromElsewhere), []);
  });

  describe('through the tap service and mesh tap', () => {
    let service: PodProcess;
    let tapUrl: string;
    const meshTap = (args: string[]): PodProcess =>
      watcherPod.spawn(node, [cli('mesh'), 'tap', ...args, '--tap-url', tapUrl, '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);

    before(async () => {
      // The pods as the destination service's file lists them: b behind svc/b, a on its own, c not meshed.
      const file = join(certs, 'services.yaml');
      writeFileSync(file, [
        'services:',
        '  - name: b',
        '    ports: [8080, 8081, 8082]',
        '    endpoints:',
        `      - { address: ${b.ipv4}, name: b-1, serviceAccount: b }`,
        '  - name: a',
        '    ports: [80]',
        '    endpoints:',
        `      - { address: ${a.ipv4}, name: a-1, serviceAccount: a }`,
        '  - name: plain',
        '    ports: [80]',
        '    endpoints:',
        '      - { address: 198.18.77.7, name: plain-1 }',
      ].join('\n'));
      service = watcherPod.spawn(node, [cli('mesh-controller'), 'tap', '--dir', pair.identity!.dir, '--source', `file:${file}`, '--listen', '0.0.0.0:8088']);
      watchers.push(service);
      await service.waitForLine(/listening/);
      tapUrl = `https://${watcherPod.ipv4}:8088`;
    });

    it('deploy/b shows b\'s requests in the anchors\' line format; Ctrl-C exits 0', async () => {
      const t = meshTap(['deploy/b', '--path', '/status/418']);
      watchers.push(t);
      await t.waitForLine(/watching 1 pod: default\/b-1/);
      await curl([`http://${b.ipv4}:8080/status/418`]);
      await t.waitForLine(/^end id=\S+ proxy=in /);
      const lines = t.lines();
      const req = lines.find((l) => l.startsWith('req '))!;
      assert.match(req, new RegExp(`^req id=\\S+ proxy=in src=${a.ipv4.replaceAll('.', '\\.')}:\\d+ dst=\\S+:8080 tls=true :method=GET :authority=${b.ipv4.replaceAll('.', '\\.')}:8080 :path=/status/418$`));
      assert.match(lines.find((l) => l.startsWith('rsp '))!, /:status=418 latency=\d+(\.\d+)?(µs|ms)$/);
      assert.match(lines.find((l) => l.startsWith('end '))!, /duration=\S+ response-length=0B$/);
      t.child.kill('SIGINT');
      await eventually(() => assert.equal(t.child.exitCode, 0));
    });

    it('--to keeps a\'s outbound requests to b; -o wide names the pod and both identities', async () => {
      const t = meshTap(['deploy/a', '--to', 'svc/b', '-o', 'wide']);
      watchers.push(t);
      await t.waitForLine(/watching 1 pod: default\/a-1/);
      await curl([`http://${b.ipv4}:8080/status/299`]);
      await curl([`http://${watcherPod.ipv4}:9/nothing-here`]).catch(() => {});
      const line = await t.waitForLine(/^req .*:path=\/status\/299/);
      assert.match(line[0], new RegExp(`proxy=out .* pod=default/a-1 server_id=${pair.identity!.name('default', 'b').replaceAll('.', '\\.')}`));
      await t.waitForLine(/^end .*response-length=0B/);
      assert.ok(!t.lines().some((l) => l.includes('nothing-here')), 'requests elsewhere are not shown');
    });

    it('a resource with no meshed pods says so and exits 1; a bad one exits 2', async () => {
      const none = await watcherPod.exec(node, [cli('mesh'), 'tap', 'deploy/plain', '--tap-url', tapUrl, '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
      assert.equal(none.code, 1, none.stderr);
      assert.match(none.stderr, /deploy\/plain in default has no meshed pods \[MESH_TAP_NO_PODS\]/);
      const bad = await watcherPod.exec(node, [cli('mesh'), 'tap', 'widget/x', '--tap-url', tapUrl, '--trust-anchors', join(pair.identity!.dir, 'ca.crt')]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /unknown resource type "widget"/);
    });
  });

  it('opaque streams show as open and close with their byte counts; request filters leave them out', async () => {
    await startEcho(b, [`0.0.0.0:6379`]);
    const all = await watch('tap', { filter: { peer: a.ipv4 } });
    const byPath = await watch('tap', { filter: { pathPrefix: '/' } });
    const r = await tcpClient(a, b.ipv4, 6379, 10_000, APP_UID);
    assert.ok(r.ok, JSON.stringify(r));
    await eventually(() => {
      const open = events(all).find((e): e is TapEvent & { kind: 'open' } => e.kind === 'open');
      assert.ok(open, 'open seen');
      assert.deepEqual([open.proxy, open.protocol, open.tls, open.clientId], ['in', 'opaque', 'true', pair.identity!.name('default', 'a')]);
      const close = byId(all, open.id).find((e): e is TapEvent & { kind: 'close' } => e.kind === 'close');
      assert.ok(close, 'close seen');
      // What b's proxy read from the client proxy and wrote back, on the mTLS stream: at least the 10 kB each way.
      assert.ok(close.bytesIn >= 10_000 && close.bytesOut >= 10_000, JSON.stringify(close));
    });
    assert.deepEqual(events(byPath).filter((e) => e.kind === 'open'), []);
  });

  it('a request in flight shows req and rsp without end until it ends', async () => {
    const w = await watch('tap', { filter: { pathPrefix: '/hang' } });
    // /hang answers headers and a few bytes, then holds the stream; curl gives up after 2 s.
    const c = a.exec('curl', ['-sS', '--max-time', '2', '--http2-prior-knowledge', '-o', '/dev/null', `http://${b.ipv4}:8081/hang`], { uid: APP_UID });
    await eventually(() => {
      const r = reqFor(w, '/hang');
      assert.ok(r);
      assert.deepEqual(byId(w, r.id).map((e) => e.kind), ['req', 'rsp']);
    });
    await c;
    await eventually(() => {
      const r = reqFor(w, '/hang')!;
      const evs = byId(w, r.id);
      assert.deepEqual(evs.map((e) => e.kind), ['req', 'rsp', 'end']);
      assert.ok((evs[2] as { error?: string }).error, 'ended with the client\'s reset');
    });
  });
});
