// HTTP through two proxies: pod A's app → A's outbound proxy → B's inbound
// proxy → B's app. Real clients (curl, grpc-js, ws) and a real server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { fixture, meshInit, node, proxiesReady, startProxy } from './mesh.js';

const APP_UID = 1000;
const MB50 = 50 * 1024 * 1024;

// Every test runs twice: proxies without identity (plaintext between them), and
// with identity, where A knows B is meshed: mTLS between the proxies, HTTP/1
// carried as HTTP/2 and restored for B's app.
for (const mode of ['plain', 'mtls'] as const) describe(`HTTP through both proxies (${mode})`, () => {
  const mtls = mode === 'mtls';
  let identity: MeshIdentity | undefined;
  let serverId = '';
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let proxyA: PodProcess;
  let proxyB: PodProcess;
  let url: string;

  const sh = (pod: Pod, script: string) => pod.execOk('sh', ['-c', script], { uid: APP_UID, timeoutMs: 60_000 });
  const curl = async (args: string[]) => (await a.execOk('curl', ['-sS', '--max-time', '30', ...args], { uid: APP_UID })).stdout;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    await meshInit(b);
    let envA: Record<string, string> = {};
    let envB: Record<string, string> = {};
    if (mtls) {
      identity = await MeshIdentity.create();
      const control = await lab.pod('mesh');
      await identity.startService(control);
      serverId = identity.name('default', 'api');
      ({ client: envA, server: envB } = await identity.meshedPair(control, 'default', 'web', b, 'api'));
    }
    proxyA = await startProxy(a, envA);
    proxyB = await startProxy(b, envB);
    // Certified (or identity off): ready.
    await proxiesReady(a, b);
    const app = b.spawn(node, [fixture('http-server.js'), '8080']);
    await app.waitForLine(/^listening/);
    url = `http://${b.ipv4}:8080`;
  });
  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
  });

  /** How B's proxy announces an inbound HTTP/1 connection: detected, or secured (mTLS, carried as h2). */
  const inboundLine = (port: number): RegExp =>
    mtls
      ? new RegExp(`secured direction=inbound .*dst=${b.ipv4}:${port} client_id=web\\.default\\.serviceaccount\\.identity\\.cluster\\.local protocol=h2`)
      : new RegExp(`detected direction=inbound .*dst=${b.ipv4}:${port} protocol=http1`);
  const tlsLabels = (): string => (mtls ? `tls="true",server_id="${serverId}"` : 'tls="no_identity",no_tls_reason="disabled"');

  it('HTTP/1.1: a 50 MB upload and a 50 MB download arrive intact, through both proxies', async () => {
    await sh(a, `head -c ${MB50} /dev/urandom > /tmp/mesh-upload-${process.pid}`);
    const expected = (await sh(a, `sha256sum /tmp/mesh-upload-${process.pid}`)).stdout.split(' ')[0];
    // 'Expect:' (empty) stops curl asking for 100-continue, which the app refuses above 1 MiB.
    const up = await curl(['--data-binary', `@/tmp/mesh-upload-${process.pid}`, '-H', 'Expect:', '-H', 'content-type: application/octet-stream', `${url}/sha256`]);
    await sh(a, `rm -f /tmp/mesh-upload-${process.pid}`);
    assert.equal(up.trim(), `${expected} ${MB50}`);

    const down = await sh(a, `curl -sS --max-time 30 -D /tmp/mesh-h-${process.pid} ${url}/bytes/${MB50} | sha256sum; cat /tmp/mesh-h-${process.pid}; rm /tmp/mesh-h-${process.pid}`);
    const advertised = /x-sha256: ([0-9a-f]+)/i.exec(down.stdout)?.[1];
    assert.ok(advertised);
    assert.equal(down.stdout.split(' ')[0], advertised);

    await proxyA.waitForLine(new RegExp(`detected direction=outbound .*dst=${b.ipv4}:8080 protocol=http1`));
    await proxyB.waitForLine(inboundLine(8080));
  });

  it('HTTP/1.1: the request and response arrive as sent: header case, order, interleaved duplicates, reason phrase, absolute-form', async () => {
    // Content-Language is a field HTTP/2 (Node) takes once: its second value must still arrive, in place.
    const out = await curl(['-H', 'X-Dup: 1', '-H', 'Content-Language: en', '-H', 'x-lower: a', '-H', 'X-DUP: 2', '-H', 'Content-Language: fr', '-H', 'ACCEPT: */*', `${url}/headers`]);
    const got = JSON.parse(out) as { rawHeaders: string[]; version: string; url: string };
    // The last pair is the proxy's own connection to the app (hop-by-hop), the same either way.
    assert.deepEqual(got.rawHeaders, ['Host', `${b.ipv4}:8080`, 'User-Agent', got.rawHeaders[3], 'X-Dup', '1', 'Content-Language', 'en', 'x-lower', 'a', 'X-DUP', '2', 'Content-Language', 'fr', 'ACCEPT', '*/*', 'Connection', 'keep-alive']);
    assert.equal(got.url, '/headers');
    // A request line in absolute form (as sent to a forward proxy) keeps that form.
    const abs = JSON.parse(await curl(['--request-target', `http://${b.ipv4}:8080/headers?q=1`, `${url}/`])) as { url: string };
    assert.equal(abs.url, `http://${b.ipv4}:8080/headers?q=1`);
    const head = await curl(['-sS', '-i', `${url}/odd`]);
    // The app's Date comes last of its own headers; Connection and Keep-Alive are the client proxy's (hop-by-hop).
    assert.match(head, /^HTTP\/1\.1 299 Fine Thanks\r\nX-Mixed-Case: v\r\nx-dup: 1\r\nX-Other: o\r\nX-Dup: 2\r\nContent-Length: 3\r\nDate: [^\r]+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nodd$/);
  });

  it('HTTP/1.1: status, Host and end-to-end headers preserved; hop-by-hop headers dropped', async () => {
    const out = await curl([
      '-H', 'Host: web.example:8080',
      '-H', 'X-Custom: One',
      '-H', 'Connection: keep-alive, X-Secret-Hop',
      '-H', 'X-Secret-Hop: must-not-cross',
      '-H', 'Keep-Alive: timeout=9',
      `${url}/headers`,
    ]);
    const got = JSON.parse(out) as { rawHeaders: string[]; version: string };
    const pairs = new Map<string, string>();
    for (let i = 0; i < got.rawHeaders.length; i += 2) pairs.set(got.rawHeaders[i]!, got.rawHeaders[i + 1]!);
    assert.equal(pairs.get('Host'), 'web.example:8080');
    assert.equal(pairs.get('X-Custom'), 'One', 'header name case and value kept');
    assert.equal(pairs.has('X-Secret-Hop'), false, 'a header named by Connection is hop-by-hop');
    assert.equal(pairs.get('Keep-Alive'), undefined);
    assert.equal(got.version, '1.1');
    const codes = await curl(['-o', '/dev/null', '-w', '%{http_code}\\n', `${url}/status/418`, '-o', '/dev/null', `${url}/status/503`]);
    assert.deepEqual(codes.trim().split('\n'), ['418', '503']);
  });

  it('HTTP/1.1: keep-alive reuses one client connection for several requests', async () => {
    const out = await curl(['-w', '%{num_connects}\\n', '-o', '/dev/null', `${url}/status/200`, '-o', '/dev/null', `${url}/status/204`, '-o', '/dev/null', `${url}/status/200`]);
    assert.deepEqual(out.trim().split('\n'), ['1', '0', '0']);
  });

  it('HTTP/1.1: chunked responses with trailers, and 100-continue decided by the server', async () => {
    // --raw shows the chunked framing itself: both chunks, then the trailer after the last chunk.
    const body = await curl(['--raw', '-H', 'TE: trailers', `${url}/trailers`]);
    assert.match(body, /part one,\r\n.*part two\r\n0\r\nx-checksum: abc123\r\n\r\n$/s);
    const small = await curl(['-H', 'Expect: 100-continue', '--data-binary', 'tiny', '-w', '\\n%{http_code}', `${url}/sha256`]);
    assert.match(small, /\n200$/);
    const refused = await sh(a, `head -c 2000000 /dev/zero | curl -sS --max-time 10 -H 'Expect: 100-continue' -H 'content-type: application/octet-stream' --data-binary @- -o /dev/null -w '%{http_code}' ${url}/sha256`);
    assert.equal(refused.stdout, '413');
  });

  it('HTTP/2 (prior knowledge): 50 MB both ways intact, multiplexed streams', async () => {
    const h2url = `http://${b.ipv4}:8081`;
    const down = await sh(a, `curl -sS --http2-prior-knowledge --max-time 30 -D /tmp/mesh-h-${process.pid} ${h2url}/bytes/${MB50} | sha256sum; cat /tmp/mesh-h-${process.pid}; rm /tmp/mesh-h-${process.pid}`);
    const advertised = /x-sha256: ([0-9a-f]+)/i.exec(down.stdout)?.[1];
    assert.ok(advertised);
    assert.equal(down.stdout.split(' ')[0], advertised);
    assert.match(down.stdout, /^HTTP\/2 200/m);
    const up = await sh(a, `head -c ${MB50} /dev/zero | curl -sS --http2-prior-knowledge --max-time 30 --data-binary @- ${h2url}/sha256`);
    const zeros = (await sh(a, `head -c ${MB50} /dev/zero | sha256sum`)).stdout.split(' ')[0];
    assert.equal(up.stdout.trim(), `${zeros} ${MB50}`);
    // Several requests on one connection, concurrently.
    const many = await sh(a, `curl -sS --http2-prior-knowledge --parallel --parallel-immediate -w '%{http_code} %{num_connects}\\n' -o /dev/null ${h2url}/status/201 -o /dev/null ${h2url}/status/202 -o /dev/null ${h2url}/status/203`);
    assert.deepEqual(many.stdout.trim().split('\n').map((l) => l.split(' ')[0]).sort(), ['201', '202', '203']);
    await proxyA.waitForLine(new RegExp(`detected direction=outbound .*dst=${b.ipv4}:8081 protocol=h2`));
  });

  it('gRPC: unary, bidirectional streaming, and an error status in trailers reach the client unchanged', async () => {
    const r = await a.execOk(node, [fixture('grpc-client.js'), `${b.ipv4}:8082`], { uid: APP_UID });
    const got = JSON.parse(r.stdout.trim()) as { unary: unknown; failing: unknown; bidi: string[] };
    assert.deepEqual(got.unary, { ok: 'echo:hello' });
    assert.deepEqual(got.failing, { code: 9, details: 'asked to fail' });
    assert.deepEqual(got.bidi, ['echo:one', 'echo:two', 'echo:three']);
  });

  it('WebSocket: an Upgrade becomes a raw stream through both proxies', async () => {
    const r = await a.execOk(node, [fixture('ws-client.js'), `ws://${b.ipv4}:8080/chat`], { uid: APP_UID });
    assert.deepEqual(JSON.parse(r.stdout.trim()), { got: ['text:hello', `binary:${256 * 1024}:true`], code: 1000 });
  });

  it('HTTP/2: resets cross both proxies, client to server and server to client', async () => {
    const r = await a.execOk(node, [fixture('h2-reset-client.js'), `http://${b.ipv4}:8081`], { uid: APP_UID });
    const got = JSON.parse(r.stdout.trim()) as { serverSawClientReset: { closed: number[] }; reset: { status: number; bytes: number; rstCode: number } };
    assert.deepEqual(got.serverSawClientReset.closed, [8], 'the app saw RST_STREAM(CANCEL) from the client');
    assert.equal(got.reset.status, 200);
    assert.equal(got.reset.bytes, 1000, 'data before the reset arrives');
    assert.equal(got.reset.rstCode, 8, 'the client sees the reset, not a clean end');
  });

  it("the app's own TLS passes through untouched, labelled with its SNI", async () => {
    const dir = `/tmp/mesh-tls-${process.pid}`;
    await b.execOk('sh', ['-c', `mkdir -p ${dir} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=api.example -addext subjectAltName=DNS:api.example -keyout ${dir}/key.pem -out ${dir}/cert.pem 2>/dev/null && chmod -R a+r ${dir}`]);
    const tls = b.spawn(node, [fixture('tls-server.js'), `${dir}/cert.pem`, `${dir}/key.pem`, '8443']);
    await tls.waitForLine(/^listening/);
    const r = await a.execOk('curl', ['-sS', '--max-time', '5', '--cacert', `${dir}/cert.pem`, '--resolve', `api.example:8443:${b.ipv4}`, 'https://api.example:8443/'], { uid: APP_UID });
    assert.equal(r.stdout, 'secure hello for api.example:8443\n', 'the certificate verified end to end: nobody terminated TLS');
    await proxyA.waitForLine(new RegExp(`detected direction=outbound .*dst=${b.ipv4}:8443 protocol=tls`));
    const metrics = await scrape(a);
    // Meshed, the app's TLS rides inside the proxies' mTLS: labelled as such.
    const labels = mtls ? tlsLabels() : 'tls="opaque",sni="api.example"';
    assert.match(metrics, new RegExp(`tcp_open_total\\{direction="outbound",target_addr="${b.ipv4}:8443",${labels}\\} 1`));
    await b.exec('rm', ['-rf', dir]);
  });

  it('the admin port answers /live and /ready', async () => {
    const r = await a.execOk('curl', ['-sS', '--max-time', '5', '-w', ' %{http_code}\n', 'http://127.0.0.1:4191/live', 'http://127.0.0.1:4191/ready', 'http://127.0.0.1:4191/nope']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['live', ' 200', 'ready', ' 200', 'not found: try /metrics, /ready or /live', ' 404']);
  });

  it('an upstream that refuses answers 502, one that does not answer 504', async () => {
    const refused = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${b.ipv4}:9999/`]);
    assert.equal(refused, '502');
    // Nothing routes 198.18.1.1 on the lab network: the SYN goes nowhere, the 1 s connect timeout fires.
    await a.execOk('ip', ['route', 'add', '198.18.1.0/24', 'dev', 'eth0']);
    const started = Date.now();
    const silent = await curl(['-D', '-', '-o', '/dev/null', `http://198.18.1.1:8080/`]);
    assert.match(silent, /^HTTP\/1.1 504/);
    assert.match(silent, /mesh-proxy-error: MESH_CONNECT_TIMEOUT/i);
    assert.ok(Date.now() - started < 5000);
  });

  it('/metrics counts what was sent', async () => {
    const before = await scrape(a);
    await curl(['-o', '/dev/null', `${url}/status/200`, '-o', '/dev/null', `${url}/status/500`, '-o', '/dev/null', `${url}/status/500`]);
    const after = await scrape(a);
    const sel = `direction="outbound",target_addr="${b.ipv4}:8080"`;
    const delta = (text: string, name: string, extra: string): number => {
      let sum = 0;
      for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && line.includes(sel) && line.includes(extra)) sum += Number(line.split(' ').pop());
      return sum;
    };
    assert.equal(delta(after, 'request_total', '') - delta(before, 'request_total', ''), 3);
    assert.equal(delta(after, 'response_total', 'status_code="500",classification="failure"') - delta(before, 'response_total', 'status_code="500",classification="failure"'), 2);
    assert.equal(delta(after, 'response_total', 'status_code="200",classification="success"') - delta(before, 'response_total', 'status_code="200",classification="success"'), 1);
    assert.match(after, new RegExp(`tcp_open_total\\{direction="outbound",target_addr="${b.ipv4}:8080",${tlsLabels()}\\}`));
    assert.match(after, /^process_resident_memory_bytes \d+/m);
  });
});

async function scrape(pod: Pod): Promise<string> {
  return (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
}
