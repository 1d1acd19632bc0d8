// The server-first race on real loopback sockets: `server` is the client's
// connection as the proxy accepted it, and `dial` reaches a second loopback
// server playing the upstream. The window is real, and short.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Log } from '../log.js';
import { ProxyMetrics } from '../metrics.js';
import { ServerFirstMemory } from './learned.js';
import { ServerFirstDetector, type EarlyMode } from './server-first.js';
import { Loopback, readAll } from './testkit.js';

const WINDOW_MS = 30;
const KEY = '127.0.0.1:9';

async function scrape(m: ProxyMetrics, name: string): Promise<string[]> {
  return (await m.registry.metrics()).split('\n').filter((l) => l.startsWith(name));
}

describe('server-speaks-first detection', () => {
  let clients: Loopback;
  let upstream: net.Server;
  /** What the upstream does with each connection it accepts. */
  let onUpstream: (s: Socket) => void = () => {};
  const accepted: Socket[] = [];

  before(async () => {
    clients = await Loopback.open();
    upstream = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      accepted.push(s);
      onUpstream(s);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
  });
  after(async () => {
    for (const s of accepted) s.destroy();
    await clients.close();
    await new Promise((r) => upstream.close(r));
  });

  function setup(memory = new ServerFirstMemory(100, 60_000), detectTimeoutMs = 5_000) {
    const logs: string[] = [];
    const metrics = new ProxyMetrics(false);
    const clientFirst = new ServerFirstMemory(100, 60_000);
    const detector = new ServerFirstDetector({
      direction: 'outbound',
      detect: { timeoutMs: detectTimeoutMs, maxBytes: 8192 },
      windowMs: WINDOW_MS,
      memory,
      clientFirst,
      metrics,
      log: new Log('info', (l) => logs.push(l)),
    });
    let dials = 0;
    const port = (upstream.address() as AddressInfo).port;
    const dial = (): Promise<Socket> => {
      dials++;
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      return once(s, 'connect').then(() => s);
    };
    /**
     * `client` acts (or not) after the pair is made; detection runs on the accepted side.
     * `acceptedMsAgo`: detection begins this long after accept (a discovery lookup's wait).
     */
    const run = async (client: (c: Socket) => void, mode: EarlyMode = 'window', d: () => Promise<Socket> = dial, acceptedMsAgo = 0) => {
      const pair = await clients.pair();
      const started = performance.now();
      const result = detector.run(pair.server, started - acceptedMsAgo, KEY, d, mode);
      client(pair.client);
      const fb = await result;
      return { ...pair, fb, ms: performance.now() - started };
    };
    return { run, detector, dial, metrics, logs, memory, clientFirst, dials: () => dials };
  }

  /** Detection on an already accepted socket, `acceptedMsAgo` after its accept. */
  const detectorRun = (t: ReturnType<typeof setup>, server: Socket, acceptedMsAgo: number) =>
    t.detector.run(server, performance.now() - acceptedMsAgo, KEY, t.dial, 'window');

  it('a client that speaks within the window costs nothing: no upstream, no wait', async () => {
    const t = setup();
    const r = await t.run((c) => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(r.fb.det.kind, 'http1');
    assert.equal(r.fb.early, false);
    assert.equal(t.dials(), 0);
    assert.ok(r.ms < WINDOW_MS, `decided in ${r.ms} ms`);
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_total'), ['protocol_detect_total{direction="outbound",outcome="http1"} 1']);
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_early_upstream_total'), []);
  });

  it('a quiet client and a server that speaks first: opaque at once, the greeting kept for the client, learned', async () => {
    const t = setup();
    // The greeting, then a FIN: the client must see both, in order.
    onUpstream = (s) => s.end('220 mail.test ESMTP\r\n');
    const r = await t.run(() => {});
    assert.deepEqual(r.fb.det, { kind: 'opaque', reason: 'server-first' });
    assert.equal(t.dials(), 1);
    assert.ok(r.ms >= WINDOW_MS - 1, `the window was waited (${r.ms} ms)`);
    // The upstream is handed over with the greeting still unread.
    const up = await r.fb.use()!;
    up.pipe(r.server);
    r.server.pipe(up);
    const got = readAll(r.client);
    assert.equal((await got).toString(), '220 mail.test ESMTP\r\n');
    assert.equal(t.memory.has(KEY), true);
    assert.equal(t.logs.filter((l) => / INFO server speaks first direction=outbound dst=127\.0\.0\.1:9 /.test(l)).length, 1);
    assert.deepEqual(await scrape(t.metrics, 'server_first_learned_total'), ['server_first_learned_total{direction="outbound"} 1']);
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_early_upstream_total'), ['protocol_detect_early_upstream_total{direction="outbound",result="used"} 1']);
    const hist = await scrape(t.metrics, 'protocol_detect_duration_seconds_count');
    assert.deepEqual(hist, ['protocol_detect_duration_seconds_count{direction="outbound",outcome="server-first"} 1']);
  });

  it('the window counts from accept: a client quiet through a slow discovery lookup is not made to wait a second window', async () => {
    const t = setup();
    onUpstream = (s) => s.write('220 mail.test ESMTP\r\n');
    const r = await t.run(() => {}, 'window', undefined, WINDOW_MS);
    assert.deepEqual(r.fb.det, { kind: 'opaque', reason: 'server-first' });
    assert.ok(r.ms < WINDOW_MS, `decided ${r.ms} ms after detection began, the window already over`);
    r.fb.drop();
  });

  it('a client that spoke before detection began is not quiet, however long ago it was accepted', async () => {
    const t = setup();
    const pair = await clients.pair();
    // On loopback the bytes are in the accepted socket's receive queue once the write completes.
    await new Promise<void>((resolve) => pair.client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n', () => resolve()));
    const running = detectorRun(t, pair.server, 10 * WINDOW_MS);
    // A busy turn (a loaded proxy): the window's timer is due before the bytes are read.
    for (const until = performance.now() + 5; performance.now() < until; );
    const fb = await running;
    assert.equal(fb.det.kind, 'http1');
    assert.equal(t.dials(), 0, 'no early upstream');
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_early_upstream_total'), []);
  });

  it('a burst of quiet clients opens at most the early budget of upstreams; the rest wait for detection as before', async () => {
    const t = setup();
    onUpstream = (s) => s.resume();
    // 80 clients quiet past the window at once, then each speaks HTTP: 64 (the burst) get an early upstream.
    const runs = Array.from({ length: 80 }, () => t.run((c) => setTimeout(() => c.write('GET / HTTP/1.1\r\n\r\n'), WINDOW_MS + 40)));
    const done = await Promise.all(runs);
    for (const r of done) assert.equal(r.fb.det.kind, 'http1');
    assert.ok(t.dials() >= 64 && t.dials() < 80, `${t.dials()} early upstreams for 80 quiet clients`);
    const skipped = (await scrape(t.metrics, 'protocol_detect_early_upstream_total')).find((l) => l.includes('result="skipped"'));
    assert.ok(skipped !== undefined && Number(skipped.split(' ').pop()) === 80 - t.dials(), String(skipped));
    for (const r of done) {
      r.client.destroy();
      r.server.destroy();
    }
  });

  it('learned: the next connection dials at accept and skips the window', async () => {
    const t = setup();
    t.memory.learn(KEY);
    onUpstream = (s) => s.write('INFO {}\r\n');
    const r = await t.run(() => {});
    assert.deepEqual(r.fb.det, { kind: 'opaque', reason: 'server-first' });
    assert.ok(r.ms < WINDOW_MS, `decided in ${r.ms} ms, before the window`);
    assert.deepEqual(await scrape(t.metrics, 'server_first_learned_total'), [], 'not news');
    r.fb.drop();
  });

  it('a quiet client that then speaks HTTP: the early upstream is closed, HTTP detected', async () => {
    const t = setup();
    // allowHalfOpen: the upstream sees the close as its end of stream.
    const upstreamClosed = new Promise<void>((resolve) => (onUpstream = (s) => s.once('end', () => resolve()).resume()));
    const r = await t.run((c) => setTimeout(() => c.write('GET / HTTP/1.1\r\n\r\n'), WINDOW_MS + 20));
    assert.equal(r.fb.det.kind, 'http1');
    assert.equal(t.dials(), 1);
    await upstreamClosed;
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_early_upstream_total'), ['protocol_detect_early_upstream_total{direction="outbound",result="closed"} 1']);
    assert.equal(t.memory.has(KEY), false);
  });

  it('a destination whose quiet client then spoke HTTP opens no early upstream for its next quiet clients', async () => {
    const t = setup();
    onUpstream = (s) => s.resume();
    const late = (c: Socket): void => void setTimeout(() => c.write('GET / HTTP/1.1\r\n\r\n'), WINDOW_MS + 20);
    const first = await t.run(late);
    assert.equal(first.fb.det.kind, 'http1');
    assert.equal(t.dials(), 1);
    assert.equal(t.clientFirst.has(KEY), true);
    const second = await t.run(late);
    assert.equal(second.fb.det.kind, 'http1');
    assert.equal(t.dials(), 1, 'no early upstream for the second quiet client');
    assert.ok(second.ms >= WINDOW_MS + 15, `it waited for its client (${second.ms} ms)`);
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_early_upstream_total'), ['protocol_detect_early_upstream_total{direction="outbound",result="closed"} 1']);
    for (const r of [first, second]) r.client.destroy();
  });

  it('a destination taken to be spoken to first is judged afresh once a client stays silent through the detect timeout', async () => {
    const t = setup(undefined, 150);
    t.clientFirst.learn(KEY);
    onUpstream = (s) => s.write('220 mail.test ESMTP\r\n');
    const silent = await t.run(() => {});
    assert.deepEqual(silent.fb.det, { kind: 'opaque', reason: 'timeout' });
    assert.equal(t.dials(), 0, 'no early upstream while it was taken to be client-first');
    assert.equal(t.clientFirst.has(KEY), false);
    const next = await t.run(() => {});
    assert.deepEqual(next.fb.det, { kind: 'opaque', reason: 'server-first' });
    assert.equal(t.dials(), 1);
    next.fb.drop();
    for (const r of [silent, next]) r.client.destroy();
  });

  it('a quiet client that then speaks an unknown protocol: opaque on the upstream already open, bytes intact', async () => {
    const t = setup();
    let upstreamGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    onUpstream = (s) => (upstreamGot = readAll(s));
    const r = await t.run((c) => setTimeout(() => c.end('\x00\x01hello'), WINDOW_MS + 20));
    assert.equal(r.fb.det.kind, 'opaque');
    const up = await r.fb.use()!;
    r.server.pipe(up);
    r.server.resume();
    assert.equal((await upstreamGot).toString('latin1'), '\x00\x01hello');
    assert.equal(accepted.length >= 1, true);
  });

  it('a learned destination whose client now speaks first is forgotten, and re-learned when its server speaks first again', async () => {
    const t = setup();
    t.memory.learn(KEY);
    onUpstream = () => {};
    const r = await t.run((c) => c.write('PING\r\n'));
    assert.equal(r.fb.det.kind, 'opaque');
    r.fb.drop();
    assert.equal(t.memory.has(KEY), false);
    assert.ok(t.logs.some((l) => / INFO server no longer speaks first direction=outbound dst=127\.0\.0\.1:9 /.test(l)));
    onUpstream = (s) => s.write('+OK banner\r\n');
    const again = await t.run(() => {});
    assert.deepEqual(again.fb.det, { kind: 'opaque', reason: 'server-first' });
    again.fb.drop();
    assert.equal(t.memory.has(KEY), true);
  });

  it('an upstream that cannot be reached while the client is quiet: decided at once as upstream-failed', async () => {
    const t = setup();
    const refused = (): Promise<Socket> => Promise.reject(Object.assign(new Error('refused'), { code: 'MESH_CONNECT_REFUSED' }));
    const r = await t.run(() => {}, 'window', refused);
    assert.deepEqual(r.fb.det, { kind: 'opaque', reason: 'upstream-failed' });
    await assert.rejects(r.fb.use()!);
    assert.deepEqual(await scrape(t.metrics, 'protocol_detect_total'), ['protocol_detect_total{direction="outbound",outcome="upstream-failed"} 1']);
  });

  it("'never' waits for the client as before", async () => {
    const t = setup();
    const r = await t.run((c) => setTimeout(() => c.end('\x16'), WINDOW_MS + 20), 'never');
    assert.deepEqual(r.fb.det, { kind: 'opaque', reason: 'eof' });
    assert.equal(t.dials(), 0);
    assert.equal(r.fb.early, false);
    r.client.destroy();
  });
});
