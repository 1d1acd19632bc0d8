// TPROXY interception: inbound connections are steered by the mangle table and
// policy routing, not NAT, so the transparent listener sees the real client.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { bin, greetingPeer, ipRules, meshInit, node, proxiesReady, startEcho, startProxy, tcpClient } from './mesh.js';

describe('TPROXY mode', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let proxy: PodProcess;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a, ['--mode', 'tproxy', '--skip-inbound-ports', '9090']);
    // NET_ADMIN (kept across the uid change) lets the proxy set IP_TRANSPARENT.
    proxy = await startProxy(a, { MESH_PROXY_INBOUND_MODE: 'tproxy' }, ['net_admin']);
    await startEcho(a, ['[::]:8080', '[::]:9090']);
    await startEcho(b, ['[::]:7000']);
  });
  after(() => lab?.destroy());

  it('installs the policy route for the mark', async () => {
    const rules = await ipRules(a, 4);
    assert.match(rules, /fwmark 0x539 lookup 133/);
    assert.match(rules, /local default dev lo table 133/);
  });

  it('delivers inbound TCP to the transparent listener with the original port local and the real client as peer', async () => {
    const r = await tcpClient(b, a.ipv4, 8080, 1 << 20);
    assert.equal(r.ok, true, JSON.stringify(r));
    const m = await proxy.waitForLine(
      new RegExp(`accepted direction=inbound src=${b.ipv4}:(\\d+) local=${a.ipv4}:8080 dst=${a.ipv4}:8080 mode=tproxy`),
    );
    // No NAT anywhere: the proxy's peer is B's very socket.
    assert.equal(`${b.ipv4}:${m[1]}`, r.local);
    assert.equal(greetingPeer(r.greeting), a.ipv4, 'the app is reached through the proxy');
  });

  it('does the same for IPv6', async () => {
    const r = await tcpClient(b, a.ipv6, 8080);
    assert.equal(r.ok, true, JSON.stringify(r));
    await proxy.waitForLine(new RegExp(`accepted direction=inbound src=${b.ipv6}:\\d+ local=${a.ipv6}:8080 dst=\\[${a.ipv6}\\]:8080 mode=tproxy`));
  });

  it('keeps skipped ports direct and outbound on REDIRECT', async () => {
    const skipped = await tcpClient(b, a.ipv4, 9090);
    assert.equal(greetingPeer(skipped.greeting), b.ipv4);
    const out = await tcpClient(a, b.ipv4, 7000, 4096, 1000);
    assert.equal(out.ok, true);
    await proxy.waitForLine(new RegExp(`accepted direction=outbound .*dst=${b.ipv4}:7000 mode=redirect`));
    assert.doesNotMatch(proxy.lines().join('\n'), /dst=\S+:9090/);
  });
});

describe('TPROXY mode with mTLS from a meshed client', () => {
  let lab: Lab;
  let identity: MeshIdentity;
  let a: Pod;
  let b: Pod;
  let proxyA: PodProcess;

  before(async () => {
    lab = await Lab.create();
    identity = await MeshIdentity.create();
    const control = await lab.pod('mesh');
    await identity.startService(control);
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a, ['--mode', 'tproxy']);
    await meshInit(b);
    // B is the client here, A (transparent inbound) the server.
    const pair = await identity.meshedPair(control, 'default', 'b', a, 'a');
    proxyA = await startProxy(a, { ...pair.server, MESH_PROXY_INBOUND_MODE: 'tproxy' }, ['net_admin']);
    await startProxy(b, pair.client);
    await proxiesReady(a, b);
    await startEcho(a, ['[::]:8080']);
  });
  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
  });

  it("terminates the client proxy's mTLS on the transparent listener, seeing the real client address", async () => {
    const r = await tcpClient(b, a.ipv4, 8080, 1 << 20, 1000);
    assert.equal(r.ok, true, JSON.stringify(r));
    await proxyA.waitForLine(new RegExp(`accepted direction=inbound src=${b.ipv4}:\\d+ local=${a.ipv4}:8080 dst=${a.ipv4}:8080 mode=tproxy`));
    await proxyA.waitForLine(new RegExp(`secured direction=inbound src=${b.ipv4}:\\d+ dst=${a.ipv4}:8080 client_id=b\\.default\\.serviceaccount\\.identity\\.cluster\\.local protocol=tunnel`));
    // The connection rides that session as a stream, with the session's (real) client address.
    await proxyA.waitForLine(new RegExp(`tunnelled direction=inbound src=${b.ipv4}:\\d+ dst=${a.ipv4}:8080 client_id=b\\.default\\.serviceaccount\\.identity\\.cluster\\.local stream=\\d+`));
  });
});

describe('TPROXY without a transparent listener', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a, ['--mode', 'tproxy']);
    await startEcho(a, ['[::]:8080']);
  });
  after(() => lab?.destroy());

  it('fails a client within its own connect timeout (the kernel drops the SYN: no RST)', async () => {
    const r = await tcpClient(b, a.ipv4, 8080, 16);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /no connection within/);
  });

  it('fails the proxy start-up with a clear reason when it lacks NET_ADMIN', async () => {
    const proc = a.spawn(node, [bin.proxy], {
      uid: 2102,
      env: { MESH_PROXY_INBOUND_MODE: 'tproxy' },
    });
    await proc.waitForLine(/start-up failed code=MESH_PERMISSION_DENIED .*CAP_NET_ADMIN/);
  });
});
