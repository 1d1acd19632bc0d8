// REDIRECT interception in real namespaces: pod A is meshed (mesh-init +
// mesh-proxy as uid 2102); pods B and C are plain peers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type Pod, type PodProcess } from './harness/index.js';
import { greetingPeer, meshInit, startEcho, startProxy, tcpClient } from './mesh.js';

describe('REDIRECT mode', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let c: Pod;
  let proxy: PodProcess;

  before(async () => {
    lab = await Lab.create();
    [a, b, c] = [await lab.pod('a'), await lab.pod('b'), await lab.pod('c')];
    await meshInit(a, ['--skip-inbound-ports', '9090', '--skip-outbound-ports', '7001', '--skip-subnets', `${c.ipv4}/32`]);
    proxy = await startProxy(a);
    await startEcho(a, ['[::]:8080', '[::]:9090']);
    await startEcho(b, ['[::]:7000', '[::]:7001']);
    await startEcho(c, ['[::]:7000']);
  });
  after(() => lab?.destroy());

  it("sends the app's outbound TCP through the proxy to the original destination, bytes intact", async () => {
    const r = await tcpClient(a, b.ipv4, 7000, 1 << 20, 1000);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.received, 1 << 20);
    const [, src] = (await proxy.waitForLine(new RegExp(`accepted direction=outbound src=(\\S+) .*dst=${b.ipv4}:7000`)))!;
    // The proxy saw the app's own socket as its peer: the connection really went through it.
    assert.equal(src, r.local);
    assert.equal(greetingPeer(r.greeting), a.ipv4);
  });

  it('sends inbound TCP for any app port to the inbound proxy, which knows the original port', async () => {
    const r = await tcpClient(b, a.ipv4, 8080);
    assert.equal(r.ok, true, JSON.stringify(r));
    const m = await proxy.waitForLine(new RegExp(`accepted direction=inbound src=${b.ipv4}:(\\d+) local=${a.ipv4}:4143 dst=${a.ipv4}:8080`));
    assert.equal(`${b.ipv4}:${m[1]}`, r.local);
    // REDIRECT rewrote the destination to the pod's own 4143; the app is reached by the proxy, not by B.
    assert.equal(greetingPeer(r.greeting), a.ipv4);
  });

  it('lets skipped inbound ports, skipped subnets and skipped outbound ports through directly', async () => {
    const skippedPort = await tcpClient(b, a.ipv4, 9090);
    assert.equal(skippedPort.ok, true);
    assert.equal(greetingPeer(skippedPort.greeting), b.ipv4, 'skip-inbound-ports: the app sees B itself');

    const skippedSubnet = await tcpClient(c, a.ipv4, 8080);
    assert.equal(skippedSubnet.ok, true);
    assert.equal(greetingPeer(skippedSubnet.greeting), c.ipv4, 'skip-subnets: the app sees C itself');

    const outSkippedPort = await tcpClient(a, b.ipv4, 7001);
    const outSkippedSubnet = await tcpClient(a, c.ipv4, 7000);
    assert.equal(outSkippedPort.ok && outSkippedSubnet.ok, true);

    // A marker connection that is proxied: once its line is logged, every
    // earlier connection would have been too, so absence is now meaningful.
    const marker = await tcpClient(a, b.ipv4, 7000, 16);
    await proxy.waitForLine(new RegExp(`accepted direction=outbound src=${marker.local!.replace(/\./g, '\\.')} `));
    const lines = proxy.lines().join('\n');
    assert.doesNotMatch(lines, /dst=\S+:9090/);
    assert.doesNotMatch(lines, new RegExp(`src=${c.ipv4}:`));
    assert.doesNotMatch(lines, /dst=\S+:7001/);
    assert.doesNotMatch(lines, new RegExp(`dst=${c.ipv4}:7000`));
  });

  it('leaves the proxy uid and loopback alone', async () => {
    // As uid 2102 the connection is not redirected: the proxy logs nothing for it.
    const asProxy = await tcpClient(a, b.ipv4, 7000, 16, 2102);
    assert.equal(asProxy.ok, true);
    const toLoopback = await tcpClient(a, '127.0.0.1', 8080, 16, 1000);
    assert.equal(toLoopback.ok, true);
    assert.equal(greetingPeer(toLoopback.greeting), '127.0.0.1');
    const marker = await tcpClient(a, b.ipv4, 7000, 16, 1000);
    await proxy.waitForLine(new RegExp(`src=${marker.local!.replace(/\./g, '\\.')} `));
    const lines = proxy.lines().join('\n');
    assert.doesNotMatch(lines, new RegExp(`src=${asProxy.local!.replace(/\./g, '\\.')} `));
    assert.doesNotMatch(lines, /dst=127\.0\.0\.1:8080/);
  });

  it('serves a connection made straight to the proxy port as an explicit HTTP proxy: raw bytes refused at once, the proxy itself never dialled', async () => {
    const r = await tcpClient(a, '127.0.0.1', 4140, 16, 1000);
    assert.equal(r.ok, false);
    await proxy.waitForLine(/explicit proxy request refused src=127\.0\.0\.1:\d+ status=400 code=MESH_EXPLICIT_BAD_REQUEST/);
    const loop = await a.exec('curl', ['-sS', '--max-time', '5', '-D', '-', '-o', '/dev/null', '-x', 'http://127.0.0.1:4140', 'http://127.0.0.1:4140/'], { uid: 1000 });
    assert.match(loop.stdout, /^HTTP\/1\.1 400 [^]*mesh-proxy-error: MESH_EXPLICIT_BAD_REQUEST/);
    await proxy.waitForLine(/explicit proxy request refused .*reason="the destination is this proxy itself"/);
  });
});

describe('REDIRECT mode over IPv6', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let proxy: PodProcess;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    proxy = await startProxy(a);
    await startEcho(a, ['[::]:8080']);
    await startEcho(b, ['[::]:7000']);
  });
  after(() => lab?.destroy());

  it('redirects outbound IPv6 to the proxy on ::1 and relays to the original [address]:port', async () => {
    const r = await tcpClient(a, b.ipv6, 7000, 1 << 20, 1000);
    assert.equal(r.ok, true, JSON.stringify(r));
    await proxy.waitForLine(new RegExp(`accepted direction=outbound .*local=::1:4140 dst=\\[${b.ipv6}\\]:7000`));
    assert.equal(greetingPeer(r.greeting), a.ipv6);
  });

  it('redirects inbound IPv6 to the proxy', async () => {
    const r = await tcpClient(b, a.ipv6, 8080);
    assert.equal(r.ok, true, JSON.stringify(r));
    await proxy.waitForLine(new RegExp(`accepted direction=inbound src=${b.ipv6}:\\d+ .*dst=\\[${a.ipv6}\\]:8080`));
    assert.equal(greetingPeer(r.greeting), a.ipv6);
  });
});
