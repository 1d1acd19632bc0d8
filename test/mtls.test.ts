// Mutual TLS between proxies, as a story in four pods: `mesh` runs the
// identity service (15 s leaves, so rotations happen during the test), `web`
// and `api` are meshed workloads, `outsider` is not meshed and plays the
// stranger: plaintext clients, impostor proxies, clients with bad certificates.
// What crosses the bridge is captured with tcpdump in the switch namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCsr, createIssuer, createTrustAnchor, issueLeaf, loadSigner, tlsKeyPem } from '../ca/index.js';
import { eventually, Lab, patienceMs, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { DEFAULT_BACKOFF } from '../proxy/identity/schedule.js';
import { fixture, meshInit, node, proxiesReady, startEcho, startProxy } from './mesh.js';
import { encodeHeader } from '../proxy/transport/header.js';
import { SESSION_ALPN } from '../proxy/transport/tls.js';

const APP_UID = 1000;
const LEAF = '15s';
// A renewal every 10.5 s, a retry backoff that may reach tens of seconds after an outage.
const slow = { timeoutMs: Math.max(6 * patienceMs(), 60_000), intervalMs: 250 };
// After an outage, a proxy's next identity retry may be a whole maximum backoff away.
const recovery = { ...slow, timeoutMs: DEFAULT_BACKOFF.maxMs + slow.timeoutMs / 2 };

interface PeerResult {
  secured: boolean;
  alpn: string | false | null;
  response: string;
  error?: string;
}

describe('mutual TLS between proxies', () => {
  let lab: Lab;
  let identity: MeshIdentity;
  let control: Pod;
  let web: Pod;
  let api: Pod;
  let outsider: Pod;
  let service: PodProcess | undefined;
  let proxyWeb: PodProcess;
  let proxyApi: PodProcess;
  let certs: string;
  let webId: string;
  let apiId: string;

  const scrape = async (pod: Pod): Promise<string> => (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
  /** Sum of a metric's series whose labels include every `parts`. */
  const sum = (text: string, name: string, ...parts: string[]): number => {
    let n = 0;
    for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && parts.every((p) => line.includes(p))) n += Number(line.split(' ').pop());
    return n;
  };
  const refreshes = async (pod: Pod): Promise<number> => sum(await scrape(pod), 'identity_cert_refresh_total', 'result="success"');
  const curl = async (pod: Pod, args: string[]) => pod.exec('curl', ['-sS', '--max-time', '10', ...args], { uid: APP_UID });

  /** A leaf for `name` from the control plane's own issuer (or `issuer`), valid from `now`. */
  const leaf = async (file: string, name: string, o: { lifetimeMs?: number; issuer?: { certPem: string; keyPem: string } } = {}): Promise<void> => {
    const pair = o.issuer ?? { certPem: await readFile(join(identity.dir, 'issuer.crt'), 'utf8'), keyPem: await readFile(join(identity.dir, 'issuer.key'), 'utf8') };
    const csr = await createCsr(name);
    const issued = await issueLeaf({ issuer: await loadSigner(pair), csr: csr.pem, identity: name, ...(o.lifetimeMs ? { lifetimeMs: o.lifetimeMs } : {}) });
    await writeFile(join(certs, `${file}.crt`), issued.chainPem, { mode: 0o644 });
    await writeFile(join(certs, `${file}.key`), tlsKeyPem(csr.privateKey), { mode: 0o644 });
  };
  const cert = (file: string): [string, string] => [join(certs, `${file}.crt`), join(certs, `${file}.key`)];

  before(async () => {
    identity = await MeshIdentity.create();
    webId = identity.name('default', 'web');
    apiId = identity.name('default', 'api');
    certs = await mkdtemp(join(tmpdir(), 'mesh-mtls-certs-'));
    await chmod(certs, 0o755);
    // The strangers' certificates: another identity, expired, another anchor.
    // Expired: a 1 ms life, over by the time any test runs (the issuer is too young to back-date into the past).
    await leaf('impostor', identity.name('default', 'impostor'));
    await leaf('expired-api', apiId, { lifetimeMs: 1 });
    await leaf('outsider', identity.name('default', 'outsider'));
    await leaf('expired-outsider', identity.name('default', 'outsider'), { lifetimeMs: 1 });
    const otherAnchor = await createTrustAnchor();
    const otherIssuer = await createIssuer(otherAnchor);
    await leaf('foreign-api', apiId, { issuer: otherIssuer });
    await leaf('foreign-outsider', identity.name('default', 'outsider'), { issuer: otherIssuer });

    lab = await Lab.create();
    control = await lab.pod('mesh');
    [web, api, outsider] = [await lab.pod('web'), await lab.pod('api'), await lab.pod('outsider')];
    service = await identity.startService(control, LEAF);
    await meshInit(web);
    await meshInit(api);
    proxyWeb = await startProxy(web, {
      ...(await identity.proxyEnv(control, 'default', 'web')),
      // api is meshed; so, it claims, is the outsider (where impostors will listen).
      MESH_PROXY_MESHED_DESTINATIONS: `${api.ipv4}=${apiId},${outsider.ipv4}=${apiId}`,
    });
    // A 2 s detect timeout also bounds the TLS handshake and the wait for the connection header.
    proxyApi = await startProxy(api, { ...(await identity.proxyEnv(control, 'default', 'api')), MESH_PROXY_REQUIRE_IDENTITY_PORTS: '8080', MESH_PROXY_DETECT_TIMEOUT: '2s' });
    await proxiesReady(web, api);
    const app = api.spawn(node, [fixture('http-server.js'), '8080']);
    await app.waitForLine(/^listening/);
    // 4444 is an opaque port by default: TCP through the mesh, still mTLS.
    await startEcho(api, [`0.0.0.0:4444`]);
  });

  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  it('is TLS on the wire: a capture on the bridge holds no request line, header or body of meshed HTTP', async () => {
    const pcap = join(certs, 'bridge.pcap');
    const dump: ChildProcess = spawn('ip', ['netns', 'exec', lab.switchNs, 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', 'br0', '-U', '-s', '0', '-w', pcap, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    dump.stderr!.on('data', (b: Buffer) => (said += b.toString()));
    await eventually(() => assert.match(said, /listening on br0/), { what: 'tcpdump listening' });
    const secret = `secret-${process.pid}-${Date.now()}`;
    const meshed = await curl(web, ['-H', `X-Marker: ${secret}-header`, '--data-binary', `${secret}-body`, `http://${api.ipv4}:8080/sha256`]);
    assert.equal(meshed.code, 0, meshed.stderr);
    assert.match(meshed.stdout, /^[0-9a-f]{64} \d+\n$/);
    // The control: plaintext from the unmeshed pod does show up, so the capture would have seen it.
    // (HTTP/1 to the opaque echo port: an h2 request's path would be Huffman-coded, invisible to a text search.)
    await curl(outsider, ['--max-time', '3', `http://${api.ipv4}:4444/${secret}-plain`]);
    // Both exchanges are complete: every packet that carried them has crossed the bridge.
    const stopped = new Promise((resolve) => dump.once('close', resolve));
    dump.kill('SIGTERM');
    await stopped;
    const text = await new Promise<string>((resolve) => {
      const r = spawn('tcpdump', ['-r', pcap, '-A', '-nn'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      r.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
      r.on('close', () => resolve(out));
    });
    assert.ok(text.includes(`${secret}-plain`), `the plaintext control request is in the capture (${said.trim()})`);
    assert.ok(text.includes(apiId), "the mTLS ClientHello (SNI = api's identity) is in the capture");
    assert.ok(!text.includes(`${secret}-header`), 'no meshed header in clear');
    assert.ok(!text.includes(`${secret}-body`), 'no meshed body in clear');
    assert.ok(!text.includes('POST /sha256'), 'no meshed request line in clear');
  });

  it("labels traffic with the peer's proven identity: client_id on the server, server_id on the client", async () => {
    const r = await curl(web, ['-o', '/dev/null', '-w', '%{http_code}', `http://${api.ipv4}:8080/status/200`]);
    assert.equal(r.stdout, '200');
    const onApi = await scrape(api);
    assert.ok(sum(onApi, 'request_total', 'direction="inbound"', 'tls="true"', `client_id="${webId}"`, `target_addr="${api.ipv4}:8080"`) >= 1, onApi);
    const onWeb = await scrape(web);
    assert.ok(sum(onWeb, 'request_total', 'direction="outbound"', 'tls="true"', `server_id="${apiId}"`) >= 1, onWeb);
    assert.ok(sum(onWeb, 'tcp_open_total', 'direction="outbound"', `target_addr="${api.ipv4}:8080"`, `server_id="${apiId}"`) >= 1);
  });

  it('refuses a destination proxy proving another identity, an expired certificate, or one from another anchor', async () => {
    const cases = [
      ['impostor', 'MESH_PEER_IDENTITY_MISMATCH'],
      ['expired-api', 'MESH_PEER_CERT_INVALID'],
      ['foreign-api', 'MESH_PEER_CERT_INVALID'],
    ] as const;
    for (const [file, code] of cases) {
      const peer = outsider.spawn(node, [fixture('mtls-peer.js'), 'server', ...cert(file), '9443']);
      await peer.waitForLine(/^listening/);
      const r = await curl(web, ['-D', '-', '-o', '/dev/null', `http://${outsider.ipv4}:9443/`]);
      assert.match(r.stdout, /^HTTP\/1\.1 502 /, `${file}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`mesh-proxy-error: ${code}`, 'i'), file);
      await proxyWeb.waitForLine(new RegExp(`request failed direction=outbound .*dst=${outsider.ipv4}:9443 code=${code}`));
      await peer.stop();
    }
    const m = await scrape(web);
    assert.equal(sum(m, 'response_total', `target_addr="${outsider.ipv4}:9443"`, 'error="MESH_PEER_IDENTITY_MISMATCH"'), 1);
    assert.equal(sum(m, 'response_total', `target_addr="${outsider.ipv4}:9443"`, 'error="MESH_PEER_CERT_INVALID"'), 2);
  });

  it('refuses a client with an expired certificate, one from another anchor, or none; accepts a valid one', async () => {
    const anchors = identity.anchors;
    const peer = async (file: string | undefined): Promise<PeerResult> => {
      const [c, k] = file === undefined ? ['-', '-'] : cert(file);
      const r = await outsider.execOk(node, [fixture('mtls-peer.js'), 'client', c, k, anchors, api.ipv4, '8080', apiId]);
      return JSON.parse(r.stdout.trim()) as PeerResult;
    };
    const before = sum(await scrape(api), 'tcp_close_total', 'error="MESH_CLIENT_CERT_INVALID"');
    // The positive control: a stranger holding a valid certificate of this mesh is served.
    const ok = await peer('outsider');
    assert.equal(ok.response, 'HTTP/1.1 200 OK', JSON.stringify(ok));
    const reasons: Array<[string | undefined, RegExp]> = [
      ['expired-outsider', /CERT_HAS_EXPIRED/],
      ['foreign-outsider', /UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/],
      [undefined, /no client certificate|UNABLE_TO_GET_ISSUER_CERT/],
    ];
    for (const [file, reason] of reasons) {
      const r = await peer(file);
      assert.equal(r.response, '', `${file ?? 'no certificate'}: nothing served (${JSON.stringify(r)})`);
      await proxyApi.waitForLine(new RegExp(`WARN connection refused direction=inbound src=${outsider.ipv4}:\\d+ .*code=MESH_CLIENT_CERT_INVALID reason=.*${reason.source}`));
    }
    await eventually(async () => assert.equal(sum(await scrape(api), 'tcp_close_total', 'error="MESH_CLIENT_CERT_INVALID"') - before, 3));
  });

  it('cuts a verified peer that then breaks the protocol (bad or missing connection header), and keeps serving', async () => {
    const peer = async (...extra: string[]): Promise<PeerResult> => {
      const r = await outsider.execOk(node, [fixture('mtls-peer.js'), 'client', ...cert('outsider'), identity.anchors, api.ipv4, '8080', apiId, ...extra]);
      return JSON.parse(r.stdout.trim()) as PeerResult;
    };
    const garbage = await peer(Buffer.from('GARBAGE!GARBAGE!').toString('hex'));
    assert.equal(garbage.response, '', JSON.stringify(garbage));
    await proxyApi.waitForLine(/WARN connection refused direction=inbound .*code=MESH_TRANSPORT_HEADER reason="from outsider\.default\.serviceaccount\.identity\.cluster\.local: no transport header \(bad magic\)"/);
    // Half a header, then silence: cut when the detect timeout (2 s here) runs out.
    const started = Date.now();
    const silent = await peer('4d45534801', 'wait');
    assert.equal(silent.response, '');
    assert.ok(Date.now() - started >= 1500, 'waited for the header as long as the detect timeout');
    await proxyApi.waitForLine(/WARN connection refused direction=inbound .*code=MESH_TRANSPORT_HEADER reason=".*no connection header in time"/);
    // A session negotiated for HTTP/2 (its records sealed by the proxy) that names HTTP/1: cut,
    // never read as plaintext.
    const http1 = encodeHeader({ protocol: 'http1', port: 8080 }).toString('hex');
    const sealed = await peer(http1, 'session');
    assert.equal(sealed.alpn, SESSION_ALPN, JSON.stringify(sealed));
    assert.equal(sealed.response, '', JSON.stringify(sealed));
    await proxyApi.waitForLine(/WARN connection refused direction=inbound .*code=MESH_TRANSPORT_HEADER reason=".*protocol http1 on a session negotiated for HTTP\/2"/);
    const r = await curl(web, ['-o', '/dev/null', '-w', '%{http_code}', `http://${api.ipv4}:8080/status/200`]);
    assert.equal(r.stdout, '200', 'the mesh still serves');
    assert.equal(proxyApi.child.exitCode, null);
  });

  it('refuses plaintext on a port that requires identity, and serves it on one that does not', async () => {
    const refused = await curl(outsider, ['-o', '/dev/null', `http://${api.ipv4}:8080/status/200`]);
    assert.notEqual(refused.code, 0, 'plaintext to 8080 is cut');
    await proxyApi.waitForLine(new RegExp(`WARN connection refused direction=inbound src=${outsider.ipv4}:\\d+ dst=${api.ipv4}:8080 code=MESH_IDENTITY_REQUIRED`));
    assert.ok(sum(await scrape(api), 'tcp_close_total', 'error="MESH_IDENTITY_REQUIRED"', 'no_tls_reason="not_provided_by_remote"') >= 1);
    const served = await curl(outsider, ['-o', '/dev/null', '-w', '%{http_code}', '--http2-prior-knowledge', `http://${api.ipv4}:8081/status/200`]);
    assert.equal(served.stdout, '200');
  });

  it('rotates certificates under constant load without failing a request, rides out an identity-service outage, and recovers', async () => {
    const load = (seconds: number) =>
      web.execOk(node, [fixture('load-client.js'), String(seconds), `http://${api.ipv4}:8080/status/200`, `${api.ipv4}:4444`], { uid: APP_UID, timeoutMs: (seconds + 30) * 1000 });
    const [webBefore, apiBefore] = [await refreshes(web), await refreshes(api)];
    // 25 s of load spans two renewals of both proxies (every 10.5 s for a 15 s leaf).
    const r = JSON.parse((await load(25)).stdout.trim()) as { http: { ok: number; failed: number }; tcp: { ok: number; failed: number }; errors: string[] };
    const failures = (): string => [proxyWeb, proxyApi].flatMap((p) => p.lines().filter((l) => /request failed|forward failed|refused|session error|certified|WARN|ERROR/.test(l))).join('\n');
    assert.deepEqual([r.http.failed, r.tcp.failed], [0, 0], `${r.errors.join('\n')}\n${failures()}`);
    assert.ok(r.http.ok > 100 && r.tcp.ok > 100, JSON.stringify(r));
    assert.ok((await refreshes(web)) - webBefore >= 2, 'web renewed at least twice during the load');
    assert.ok((await refreshes(api)) - apiBefore >= 2, 'api renewed at least twice during the load');

    // The identity service goes away: the held certificates keep serving until they expire.
    await service!.stop();
    service = undefined;
    const held = JSON.parse((await load(2)).stdout.trim()) as typeof r;
    assert.deepEqual([held.http.failed, held.tcp.failed], [0, 0], held.errors.join('\n'));
    await proxyWeb.waitForLine(/WARN identity refresh failed code=MESH_API_UNREACHABLE/, slow.timeoutMs);
    // Past expiry a new mTLS connection cannot be made: each side refuses the other's expired certificate.
    await eventually(async () => {
      const t = JSON.parse((await load(1)).stdout.trim()) as typeof r;
      assert.ok(t.tcp.failed > 0, 'new opaque connections fail once the certificates have expired');
    }, { ...slow, what: 'certificates expired' });

    // Back again: both proxies renew on their next retry, and new connections work.
    service = await identity.startService(control, LEAF);
    await eventually(async () => {
      const t = JSON.parse((await load(1)).stdout.trim()) as typeof r;
      assert.deepEqual([t.http.failed, t.tcp.failed], [0, 0], t.errors.join('\n'));
      assert.ok(t.tcp.ok > 0);
    }, { ...recovery, what: 'traffic recovered after the identity service came back' });
  });
});
