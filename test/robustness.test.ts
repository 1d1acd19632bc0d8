// Hostile and broken clients never crash the proxy or corrupt anyone else's
// stream; SIGTERM lets in-flight requests finish.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { eventually, Lab, type Pod, type PodProcess } from './harness/index.js';
import { fixture, meshInit, node, startEcho, startProxy } from './mesh.js';
import { meshedPodPair, type PodPair } from './pod-pair.js';

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

interface RawResult {
  localPort: number;
  outcome: string;
  ms: number;
  text: string;
  bytes: number;
}

// Twice: plaintext between the proxies, and mTLS (where resets and half-closes
// must cross a TLS session too).
for (const mode of ['plain', 'mtls'] as const) describe(`hostile input (${mode})`, () => {
  let pair: PodPair | undefined;
  let a: Pod;
  let b: Pod;
  let proxyA: PodProcess;
  let proxyB: PodProcess;

  const raw = async (bytes: string, ...flags: string[]): Promise<RawResult> => {
    const r = await a.execOk(node, [fixture('raw-client.js'), b.ipv4, '7000', bytes, ...flags], { uid: 1000 });
    return JSON.parse(r.stdout.trim()) as RawResult;
  };
  const rawHttp = async (bytes: string): Promise<RawResult> => {
    const r = await a.execOk(node, [fixture('raw-client.js'), b.ipv4, '8080', bytes], { uid: 1000 });
    return JSON.parse(r.stdout.trim()) as RawResult;
  };
  const stillServing = async (): Promise<void> => {
    const r = await a.execOk('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${b.ipv4}:8080/status/200`], { uid: 1000 });
    assert.equal(r.stdout, '200');
    assert.equal(proxyA.child.exitCode, null, 'client proxy alive');
    assert.equal(proxyB.child.exitCode, null, 'server proxy alive');
  };

  before(async () => {
    pair = await meshedPodPair(mode, { MESH_PROXY_DETECT_TIMEOUT: '300ms' });
    ({ a, b, proxyA, proxyB } = pair);
    await startEcho(b, ['[::]:7000']);
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
  });
  after(async () => {
    await pair?.destroy();
  });

  it('garbage after a valid HTTP/1 request line gets 400, nothing else', async () => {
    const r = await rawHttp(hex('GET / HTTP/1.1\r\n\u0000\u0001\u0002 not a header\r\n\r\n'));
    assert.match(r.text, /^HTTP\/1.1 400 /);
    await stillServing();
  });

  it('garbage after a valid HTTP/2 preface ends that connection only', async () => {
    const r = await rawHttp(hex('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n') + 'ffffffffffffffffffffffff00112233');
    assert.equal(r.outcome === 'closed' || r.outcome === 'ECONNRESET', true, JSON.stringify(r));
    await stillServing();
  });

  it('a truncated or malformed ClientHello is forwarded as opaque bytes, unharmed', async () => {
    // Record header says 512 bytes of handshake; only a few follow, then FIN.
    const r = await raw('160301020001000200' + '0303' + 'aa'.repeat(8));
    assert.equal(r.outcome, 'closed');
    assert.match(r.text, /^peer=/, 'reached the echo app');
    assert.equal(r.bytes - r.text.indexOf('\n') - 1, 2 + 9 + 8, 'every byte echoed back');
    await stillServing();
  });

  it('a client that sends one byte and waits is forwarded as opaque after the detect timeout', async () => {
    const r = await raw('41', '--keep-open', '--wait=3000');
    // Greeting plus the echoed byte: the connection was not failed, just no longer sniffed.
    assert.match(r.text, /^peer=\S+ local=\S+\nA$/);
    assert.ok(r.ms >= 250, `waited for the detect timeout (${r.ms} ms)`);
    await proxyA.waitForLine(/detected direction=outbound .*dst=\S+:7000 protocol=opaque reason=timeout/);
  });

  it('a client that resets mid-detection, or mid-request, leaves no damage', async () => {
    for (const bytes of [hex('GET /a-very-long-path'), hex('PRI * HTTP'), '1603', hex('POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial body')]) {
      const r = await raw(bytes, '--reset');
      assert.equal(r.outcome, 'reset-sent');
    }
    const r = await rawHttp(hex('POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nshort'));
    assert.equal(r.outcome, 'closed');
    await stillServing();
  });

  it('opaque streams carry resets both ways, through both proxies', async () => {
    // Judged on the wire (tcpdump): whether a Node socket reports an incoming
    // RST as an error or as a plain end is not ours to decide, the packet is.
    // What the proxy owes is this: once it has seen a reset on one side, it
    // sends a reset on the other. On a loaded machine a Node socket now and then
    // reports an incoming RST as a plain end (the proxy then passes on a FIN), so
    // an attempt counts only where both proxies saw the reset in their logs.
    const resetsLogged = (p: PodProcess, from: number): number =>
      p.lines().slice(from).filter((l) => / closed .*error=MESH_STREAM_RESET/.test(l)).length;
    const attempt = async (clientArgs: string[], wirePod: Pod, rst: (r: RawResult) => string): Promise<boolean> => {
      const wire = wirePod.spawn('tcpdump', ['-l', '-n', '-i', 'lo', 'tcp[tcpflags] & tcp-rst != 0']);
      await wire.waitForLine(/listening on lo/);
      const [fromA, fromB] = [proxyA.lines().length, proxyB.lines().length];
      const r = await raw(...(clientArgs as [string, ...string[]]));
      assert.notEqual(r.outcome, 'timeout', 'the connection ended');
      const seen = await eventually(() => resetsLogged(proxyA, fromA) > 0 && resetsLogged(proxyB, fromB) > 0, { timeoutMs: 3000 }).catch(() => false);
      if (seen) await eventually(() => assert.ok(wire.lines().some((l) => l.includes(rst(r))), wire.output()), { what: `an RST on the wire (${rst(r)})` });
      await wire.stop();
      return seen;
    };
    let counted = 0;
    for (let i = 0; i < 5 && counted < 2; i++) {
      // The app resets: the client's proxy must reset the client.
      if (await attempt([hex('please-reset'), '--keep-open'], a, (r) => `> ${a.ipv4}.${r.localPort}: Flags [R`)) counted++;
      // The client resets once the path is up: the app's proxy must reset the app.
      if (await attempt([hex('hello then a reset'), '--keep-open', '--reset-after-data'], b, () => `> ${b.ipv4}.7000: Flags [R`)) counted++;
    }
    assert.ok(counted >= 2, `resets crossed both proxies in ${counted} attempts`);
  });

  it('accounts for every connection it saw: none left open, every one closed', async () => {
    // Each hostile client above has gone; the client proxy's outbound side must say so.
    await eventually(async () => {
      const m = (await a.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
      const sum = (name: string): number =>
        m.split('\n').filter((l) => l.startsWith(`${name}{direction="outbound"`)).reduce((t, l) => t + Number(l.split(' ').pop()), 0);
      assert.equal(sum('tcp_open_connections'), 0, 'no connection left counted as open');
      assert.equal(sum('tcp_close_total'), sum('tcp_open_total'), 'every opened connection counted as closed');
      assert.ok(sum('tcp_open_total') >= 10);
    }, { what: 'tcp_open_connections back to 0' });
  });
});

describe('graceful shutdown', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
  });
  after(() => lab?.destroy());

  it('SIGTERM: an in-flight request finishes, then the proxy exits and accepts nothing new', async () => {
    const proxy = await startProxy(a);
    const slow = a.exec('curl', ['-sS', '--max-time', '10', '-w', ' %{http_code}', `http://${b.ipv4}:8080/delay/1500`], { uid: 1000 });
    await proxy.waitForLine(/detected direction=outbound .*dst=\S+:8080 protocol=http1/);
    const exited = once(proxy.child, 'exit');
    proxy.child.kill('SIGTERM');
    await proxy.waitForLine(/shutting down signal=SIGTERM/);
    const r = await slow;
    assert.equal(r.stdout, 'waited 1500 ms\n 200');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    const refused = await a.exec('curl', ['-sS', '--max-time', '5', `http://${b.ipv4}:8080/status/200`], { uid: 1000 });
    assert.equal(refused.code, 7, 'connection refused: nothing listens on 4140 any more');
  });
});
