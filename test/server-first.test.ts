// Every TCP protocol with no annotation (issue 12). Pods a and b meshed with
// mTLS between their proxies; pod c runs a proxy without mesh-init, used as
// an explicit HTTP proxy. In b, on ports outside the opaque list: a real
// MariaDB (3307), SMTP-like (2525) and NATS-like (4223) banner servers, and
// client-first servers (HTTP/1, h2c, gRPC, PostgreSQL, Redis).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { eventually, Lab, patienceMs, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { fixture, meshInit, node, proxiesReady, startProxy } from './mesh.js';
import { findBinary, startMariadb, startPostgres, startRedis } from './services.js';
import { adminUrl } from '../contract/sidecar.js';

const APP_UID = 1000;
const CLIENT_ID = 'a.default.serviceaccount.identity.cluster.local';
const escape = (s: string): string => s.replace(/[.[\]]/g, '\\$&');

interface FirstByte {
  firstByteMs: number;
  banner?: string;
  reply?: string;
  error?: string;
}

/** protocol_detect_total and friends from a proxy's /metrics, as "name{labels}" → value. */
async function series(pod: Pod, prefix: string): Promise<Map<string, number>> {
  const r = await pod.execOk('curl', ['-sf', '--max-time', '5', adminUrl('/metrics')]);
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) d[k] = v - (before.get(k) ?? 0);
  return d;
}

describe('server-speaks-first detection and explicit proxy mode (mTLS, no annotations)', () => {
  let lab: Lab;
  let identity: MeshIdentity;
  let a: Pod, b: Pod, c: Pod;
  let proxyA: PodProcess, proxyB: PodProcess;
  const apps: Record<string, PodProcess> = {};

  const firstByte = async (port: number, line: string): Promise<FirstByte> => {
    const r = await a.exec(node, [fixture('first-byte.js'), b.ipv4, String(port), line], { uid: APP_UID, timeoutMs: patienceMs() });
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as FirstByte;
    assert.equal(out.error, undefined, `port ${port}: ${out.error}`);
    return out;
  };
  const banner = (port: number, kind: 'smtp' | 'nats'): Promise<PodProcess> => {
    const p = b.spawn(node, [fixture('banner-server.js'), String(port), kind]);
    return p.waitForLine(/^listening/).then(() => p);
  };
  const lines = (p: PodProcess, re: RegExp): number => p.lines().filter((l) => re.test(l)).length;
  const learnedLine = (port: number): RegExp => new RegExp(`INFO server speaks first direction=outbound dst=${escape(b.ipv4)}:${port} `);

  before(async () => {
    lab = await Lab.create();
    [a, b, c] = [await lab.pod('a'), await lab.pod('b'), await lab.pod('c')];
    await Promise.all([meshInit(a), meshInit(b)]); // not c: its app uses the proxy explicitly
    identity = await MeshIdentity.create();
    const control = await lab.pod('mesh');
    await identity.startService(control);
    const pair = await identity.meshedPair(control, 'default', 'a', b, 'b');
    [proxyA, proxyB] = await Promise.all([startProxy(a, pair.client), startProxy(b, pair.server)]);
    await startProxy(c, pair.client);
    await proxiesReady(a, b, c);
    const http = b.spawn(node, [fixture('http-server.js'), '8080']);
    await http.waitForLine(/^listening/);
    [apps.mariadb, apps.smtp, apps.nats, apps.smtp25] = await Promise.all([startMariadb(b, 3307), banner(2525, 'smtp'), banner(4223, 'nats'), banner(25, 'smtp'), startPostgres(b, 5433), startRedis(b, 6380)]);
  });
  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
  });

  it('MariaDB (3307), SMTP (2525) and NATS (4223): first server byte within 50 ms of connect through both proxies, the window included', async (t) => {
    // What each proxy does once in its life is not any port's first connection: the first
    // mTLS handshakes, code compiled on first use (on a slow host 15-25 ms together). An
    // SMTP banner on 25, opaque by port, warms them; 2525 then still gets the window, an
    // mTLS connection of its own and its app dialled.
    const warm = await firstByte(25, 'EHLO a');
    t.diagnostic(`warm-up, port 25 (opaque by port): first byte after ${warm.firstByteMs} ms`);
    for (const [port, line, reply] of [[2525, 'EHLO a', '250 ok'], [4223, 'PING', 'PONG'], [3307, '-', undefined]] as const) {
      const r = await firstByte(port, line);
      t.diagnostic(`port ${port}: first byte after ${r.firstByteMs} ms (first connection: window, mTLS, app dialled by b's proxy)`);
      assert.ok(r.firstByteMs <= 50, `port ${port}: first byte after ${r.firstByteMs} ms`);
      if (reply !== undefined) assert.equal(r.reply, reply);
      // a's proxy opened the mTLS leg with the protocol unknown; b's raced the app.
      await eventually(() => lines(proxyB, new RegExp(`secured direction=inbound src=${escape(a.ipv4)}:\\d+ dst=${escape(b.ipv4)}:${port} client_id=${escape(CLIENT_ID)} protocol=unknown`)) === 1, { what: `b secured ${port} as unknown` });
      await eventually(() => lines(proxyA, learnedLine(port)) === 1, { what: `a learned ${port}` });
    }
    assert.match(apps.smtp!.output(), /accept 1\n/);
    assert.doesNotMatch(apps.smtp!.output(), /accept 2/, 'one upstream connection for one client connection');
  });

  it('a MariaDB client logs in and queries on 3307 at once', async (t) => {
    const started = performance.now();
    const r = await a.exec(findBinary('mariadb'), ['--no-defaults', '-h', b.ipv4, '-P', '3307', '-u', 'root', '-N', '-B', '-e', 'select 6*7'], { uid: APP_UID, timeoutMs: patienceMs() });
    const ms = Math.round(performance.now() - started);
    t.diagnostic(`mariadb client took ${ms} ms`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '42\n');
    assert.ok(ms < 1000, `mariadb took ${ms} ms`);
  });

  it('learned: the next connection skips the window; a port that changes behaviour is forgotten and re-learned', async (t) => {
    const again = await firstByte(2525, 'EHLO a');
    t.diagnostic(`2525 learned: first byte after ${again.firstByteMs} ms`);
    assert.equal(lines(proxyA, learnedLine(2525)), 1, 'learned once, not again');
    // 4224: a banner server, learned; replaced by a client-first echo; then a banner again.
    let server = await banner(4224, 'nats');
    await firstByte(4224, 'PING');
    await eventually(() => lines(proxyA, learnedLine(4224)) === 1, { what: 'a learned 4224' });
    await server.stop();
    const echo = b.spawn(node, ['-e', "require('net').createServer({allowHalfOpen:true},(s)=>s.pipe(s)).listen(4224,()=>console.log('listening'))"]);
    await echo.waitForLine(/^listening/);
    const said = await a.execOk(node, ['-e', `const s=require('net').connect(4224,'${b.ipv4}',()=>s.end('hello\\n'));let t='';s.on('data',(d)=>t+=d);s.on('end',()=>console.log(t.trim()))`], { uid: APP_UID });
    assert.equal(said.stdout, 'hello\n');
    await eventually(() => lines(proxyA, new RegExp(`INFO server no longer speaks first direction=outbound dst=${escape(b.ipv4)}:4224 `)) === 1, { what: 'a forgot 4224' });
    await echo.stop();
    server = await banner(4224, 'nats');
    const back = await firstByte(4224, 'PING');
    assert.equal(back.reply, 'PONG');
    await eventually(() => lines(proxyA, learnedLine(4224)) === 2, { what: 'a learned 4224 again' });
  });

  it('client-first traffic (curl HTTP/1, h2c, gRPC, psql, redis-cli) opens no extra upstream connection', async () => {
    // Kernel counters of SYNs: in b, those of b's proxy to the app; in a, those of a's proxy to b.
    const ports = [8080, 8081, 8082, 5433, 6380];
    for (const p of ports) {
      await b.execOk('iptables', ['-w', '-A', 'INPUT', '-p', 'tcp', '--syn', '-d', b.ipv4, '--dport', String(p), '-j', 'ACCEPT']);
      await a.execOk('iptables', ['-w', '-A', 'OUTPUT', '-p', 'tcp', '--syn', '-d', b.ipv4, '--dport', String(p), '-j', 'ACCEPT']);
    }
    const syns = async (pod: Pod, chain: string): Promise<Record<number, number>> => {
      const r = await pod.execOk('iptables', ['-w', '-L', chain, '-v', '-x', '-n']);
      const out: Record<number, number> = {};
      for (const l of r.stdout.split('\n')) {
        const m = /^\s*(\d+)\s+\d+\s+ACCEPT\s+6 .* tcp dpt:(\d+) flags:0x17\/0x02/.exec(l);
        if (m) out[Number(m[2])] = Number(m[1]);
      }
      return out;
    };
    const earlyA = await series(a, 'protocol_detect_early_upstream_total');
    const earlyB = await series(b, 'protocol_detect_early_upstream_total');
    const sh = (cmd: string): Promise<unknown> => a.execOk('sh', ['-c', cmd], { uid: APP_UID, timeoutMs: patienceMs() });
    const url = `http://${b.ipv4}`;
    for (let i = 0; i < 3; i++) await sh(`curl -sSf --max-time 10 ${url}:8080/status/204`);
    await sh(`curl -sSf --max-time 10 --http2-prior-knowledge ${url}:8081/status/204`);
    await a.execOk(node, [fixture('grpc-client.js'), `${b.ipv4}:8082`], { uid: APP_UID });
    for (let i = 0; i < 2; i++) await sh(`psql -X -At -c 'select 1' 'host=${b.ipv4} port=5433 user=postgres dbname=postgres gssencmode=disable sslmode=disable'`);
    for (let i = 0; i < 2; i++) await sh(`redis-cli -h ${b.ipv4} -p 6380 PING`);
    const [inB, outA] = [await syns(b, 'INPUT'), await syns(a, 'OUTPUT')];
    // One connection to the app per client connection for the opaque ones; between the
    // proxies they are streams of one tunnel session (proxy/tunnel.ts).
    assert.equal(inB[5433], 2, 'psql: b dialled the app once per client');
    assert.equal(inB[6380], 2, 'redis: b dialled the app once per client');
    assert.ok((outA[5433] ?? 0) <= 1, `psql: a dialled b:5433 ${outA[5433]} times`);
    assert.ok((outA[6380] ?? 0) <= 1, `redis: a dialled b:6380 ${outA[6380]} times`);
    // HTTP rides one h2 mTLS connection between the proxies, and pooled connections to the app.
    for (const p of [8080, 8081, 8082]) {
      assert.ok((outA[p] ?? 0) <= 1, `a dialled b:${p} ${outA[p]} times`);
      assert.ok((inB[p] ?? 0) <= (p === 8080 ? 3 : 1), `b dialled the app's ${p} ${inB[p]} times`);
    }
    assert.deepEqual(delta(earlyA, await series(a, 'protocol_detect_early_upstream_total')), {}, 'a opened nothing early');
    assert.deepEqual(delta(earlyB, await series(b, 'protocol_detect_early_upstream_total')), {}, 'b opened nothing early');
  });

  it('the detection metrics count each outcome once', async () => {
    const before = await series(a, 'protocol_detect_total');
    await a.execOk('curl', ['-sSf', '--max-time', '10', `http://${b.ipv4}:8080/status/204`], { uid: APP_UID });
    await firstByte(2525, 'EHLO a'); // learned: server-first at accept
    await firstByte(25, 'EHLO a'); // an opaque port
    await eventually(async () => {
      assert.deepEqual(delta(before, await series(a, 'protocol_detect_total')), {
        'protocol_detect_total{direction="outbound",outcome="http1"}': 1,
        'protocol_detect_total{direction="outbound",outcome="server-first"}': 1,
        'protocol_detect_total{direction="outbound",outcome="opaque-by-port"}': 1,
      });
    });
    const hist = await series(a, 'protocol_detect_duration_seconds_count');
    assert.ok((hist.get('protocol_detect_duration_seconds_count{direction="outbound",outcome="server-first"}') ?? 0) >= 3);
    const learned = await series(a, 'server_first_learned_total');
    assert.equal(learned.get('server_first_learned_total{direction="outbound"}'), 5, '2525, 4223, 3307, 4224 twice');
    const inbound = await series(b, 'protocol_detect_total{direction="inbound",outcome="server-first"}');
    assert.ok([...inbound.values()][0]! >= 5, 'b raced the app for each unknown session');
  });

  describe('explicit proxy mode: an un-intercepted pod uses 127.0.0.1:4140 as its HTTP proxy', () => {
    const secured = (protocol: string): RegExp =>
      new RegExp(`secured direction=inbound src=${escape(c.ipv4)}:\\d+ dst=${escape(b.ipv4)}:8080 client_id=${escape(CLIENT_ID)} protocol=${protocol}`);

    it('curl -x: absolute-form requests reach the meshed server over mTLS', async () => {
      const r = await c.execOk('curl', ['-sSf', '--max-time', '10', '-x', 'http://127.0.0.1:4140', `http://${b.ipv4}:8080/headers`], { uid: APP_UID });
      assert.match(r.stdout, /"user-agent"/i);
      await eventually(() => lines(proxyB, secured('h2')) >= 1, { what: "b's proxy secured c's request with a's identity" });
    });

    it('CONNECT (curl -p, HTTPS_PROXY) is tunnelled over mTLS as opaque', async () => {
      const r = await c.execOk('curl', ['-sS', '--max-time', '10', '-p', '-x', 'http://127.0.0.1:4140', '-o', '/dev/null', '-w', '%{http_code}', `http://${b.ipv4}:8080/status/201`], { uid: APP_UID });
      assert.equal(r.stdout, '201');
      await eventually(() => lines(proxyB, secured('opaque')) >= 1, { what: "b's proxy secured c's tunnel" });
      // HTTPS_PROXY makes curl CONNECT for https:// URLs. No TLS server on 8080: the handshake
      // fails, but only after the proxy answered the CONNECT with 200 and b's proxy secured it.
      const before = lines(proxyB, secured('opaque'));
      const viaEnv = await c.exec('curl', ['-s', '--max-time', '10', '-k', '-o', '/dev/null', '-w', '%{http_connect}', `https://${b.ipv4}:8080/`], { uid: APP_UID, env: { HTTPS_PROXY: 'http://127.0.0.1:4140' } });
      assert.equal(viaEnv.stdout, '200');
      await eventually(() => lines(proxyB, secured('opaque')) > before, { what: "b's proxy secured the HTTPS_PROXY tunnel" });
    });

    it('anything else is refused with the proxy error header', async () => {
      const r = await c.execOk('curl', ['-sS', '--max-time', '10', '-D', '-', '-o', '/dev/null', 'http://127.0.0.1:4140/'], { uid: APP_UID });
      assert.match(r.stdout, /^HTTP\/1\.1 400 /);
      assert.match(r.stdout, /mesh-proxy-error: MESH_EXPLICIT_BAD_REQUEST/);
    });
  });
});
