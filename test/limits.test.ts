// The proxy at its limits (issue 8, "What it must show" item 6), with real
// kernels: pod A's client holds thousands of connections through A's outbound
// proxy and B's inbound proxy to an app in B, while the test reads each proxy's
// resident memory from /proc and its counters from /metrics.
//   - 10,000 idle HTTP/1 keep-alive connections: ≤ 8 KB each per proxy
//   - 10,000 idle opaque mTLS connections (fewer where the descriptor hard
//     limit cannot hold them: see OPAQUE_CONNECTIONS): ≤ 32 KB each per proxy
//   - a fresh request is answered in < 50 ms while they are held
//   - a minute after they close, RSS is back within 1.5x of idle
//   - past the descriptor limit new connections are refused at once and
//     counted, held ones keep working, and after release new ones work again
//   - 500 clients sending a head one byte a second are closed at the head
//     timeout and do not slow anyone else
//   - opaque bulk with half-close through mTLS arrives intact both ways
// Figures are reported with t.diagnostic; targets the proxy misses today are
// `todo` with the measured figure, their bounds unchanged.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { counter, destroy, heapParts, memoryParts, meshPair, reclaimLines, rssKb, type Mesh } from './limits-kit.js';
import { fixture, node, startEcho } from './mesh.js';

const CONNECTIONS = 10_000;

// Every pod process inherits this process's RLIMIT_NOFILE (and Node raises its
// soft limit to the hard one). 10,000 opaque connections take one descriptor
// each in each proxy (the client's in A, the app's in B: between the proxies
// they share one tunnel session) plus the budget's reserve (2% of the limit).
// Raise ours where we may (root with CAP_SYS_RESOURCE); where we may not, the
// opaque case holds as many as fit, and says so.
const NOFILE = 65_536;
function fdHardLimit(): number {
  const hard = /^Max open files\s+\d+\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard);
}
if (fdHardLimit() < NOFILE) {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${NOFILE}:${NOFILE}`], { stdio: 'ignore' });
  } catch {
    // No CAP_SYS_RESOURCE: keep the limit we were given.
  }
}
const HARD_LIMIT = fdHardLimit();
/** Opaque connections that fit one proxy: a descriptor each, the 2% reserve, ~100 for the process itself. */
const OPAQUE_CONNECTIONS = Math.min(CONNECTIONS, Math.floor((HARD_LIMIT * 0.98 - 100) / 500) * 500);

/** What a proxy logged at warn or info about failed connections, tallied by code and reason. */
function logReasons(proc: PodProcess): string {
  const tally = new Map<string, number>();
  for (const line of proc.lines()) {
    if (!/ (WARN|INFO) (forward failed|connection refused)/.test(line)) continue;
    const key = line.replace(/^\S+ /, '').replace(/(src|dst)=\S+ ?/g, '').replace(/\d+(\.\d+)? ?ms/g, 'N ms').slice(0, 200);
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries([...tally].sort((x, y) => y[1] - x[1]).slice(0, 5)));
}

interface BulkReport {
  sent: number;
  sentSha: string;
  received: number;
  receivedSha: string;
  ms: number;
}

interface Opened {
  held: number;
  ok: number;
  failed: Record<string, number>;
  failMs?: { p50: number; max: number };
  openMs: number;
}

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** The `k` slowest of paced samples, with when each started (ms after the first). */
function slowest(ms: readonly number[], everyMs: number, k = 3): string {
  return ms.map((v, i) => ({ v, at: i * everyMs })).sort((x, y) => y.v - x.v).slice(0, k).map((x) => `${x.v} ms at +${x.at} ms`).join(', ');
}

/** test/fixtures/hold-clients.js in a pod, driven by commands on its stdin. */
class Holder {
  #next = 0;
  private constructor(readonly proc: PodProcess) {}

  /** Opens `count` connections (as uid 1000, so they are intercepted); resolves once all have succeeded or failed. */
  static async open(pod: Pod, host: string, port: number, count: number, opts: { protocol?: 'http' | 'echo'; parallel?: number } = {}): Promise<{ holder: Holder; opened: Opened }> {
    const args = [fixture('hold-clients.js'), host, String(port), '--count', String(count), '--protocol', opts.protocol ?? 'http', '--parallel', String(opts.parallel ?? 200), '--hold-max', '240'];
    const proc = pod.spawn(node, args, { uid: 1000 });
    const line = await proc.waitForLine(/^\{"event":"opened".*$/, 150_000);
    return { holder: new Holder(proc), opened: JSON.parse(line[0]) as Opened };
  }

  async #command<T>(cmd: string, timeoutMs = 30_000): Promise<T> {
    const id = `c${this.#next++}`;
    this.proc.child.stdin!.write(`${cmd} ${id}\n`);
    const line = await this.proc.waitForLine(new RegExp(`^\\{.*"id":"${id}".*$`), timeoutMs);
    return JSON.parse(line[0]) as T;
  }

  /** Another exchange on `k` of the held connections. */
  probe(k: number): Promise<{ ok: number; failed: Record<string, number>; maxMs: number; live: number }> {
    return this.#command(`probe ${k}`);
  }

  /** `k` new connections, one exchange each; `everyMs` paces their starts (0: one after another). */
  fresh(k: number, everyMs = 0): Promise<{ ok: number; failed: Record<string, number>; ms: number[] }> {
    return this.#command(`fresh ${k} ${everyMs}`);
  }

  async release(): Promise<{ lostWhileHeld: number }> {
    if (this.proc.child.exitCode !== null) return { lostWhileHeld: NaN };
    return this.#command('release');
  }
}

/**
 * Idle RSS of both proxies after a warm-up (a few hundred connections opened,
 * used and closed), so code, pools and caches are counted as idle, not as
 * the cost of the connections measured next.
 */
async function warmIdle(m: Mesh, port: number, protocol: 'http' | 'echo'): Promise<{ a: number; b: number }> {
  const { holder, opened } = await Holder.open(m.a, m.b.ipv4, port, 300, { protocol, parallel: 50 });
  assert.equal(opened.ok, 300, `warm-up: ${JSON.stringify(opened)}`);
  await holder.release();
  return { a: rssKb(m.proxyA), b: rssKb(m.proxyB) };
}

interface Held {
  holder: Holder;
  opened: Opened;
  idle: { a: number; b: number };
  held: { a: number; b: number };
  /** KiB per held connection, per proxy. */
  perConn: { a: number; b: number };
}

/**
 * Opens `count` idle connections from A to B:port and reads both proxies' RSS
 * while they are held. Measures whatever was held; the caller asserts.
 */
async function holdMany(t: TestContext, m: Mesh, port: number, o: { protocol: 'http' | 'echo'; count: number; parallel: number }, idle: { a: number; b: number }): Promise<Held> {
  const { holder, opened } = await Holder.open(m.a, m.b.ipv4, port, o.count, o);
  t.diagnostic(`opened ${opened.ok}/${o.count} (${o.parallel} at a time) in ${opened.openMs} ms; failed ${JSON.stringify(opened.failed)}`);
  if (opened.ok !== o.count) t.diagnostic(`why, by the proxies' logs: A ${logReasons(m.proxyA)}; B ${logReasons(m.proxyB)}`);
  const held = { a: rssKb(m.proxyA), b: rssKb(m.proxyB) };
  const perConn = { a: (held.a - idle.a) / opened.ok, b: (held.b - idle.b) / opened.ok };
  t.diagnostic(`proxy A (client): idle ${idle.a} KiB, holding ${held.a} KiB → ${perConn.a.toFixed(2)} KiB per connection; ${memoryParts(m.proxyA)}; ${await heapParts(m.a)}`);
  t.diagnostic(`proxy B (server): idle ${idle.b} KiB, holding ${held.b} KiB → ${perConn.b.toFixed(2)} KiB per connection; ${memoryParts(m.proxyB)}; ${await heapParts(m.b)}`);
  return { holder, opened, idle, held, perConn };
}

/** Every connection opened, and each one held still works: the proxies hold them, not just their sockets. */
async function assertAllHeld(h: Held, count: number): Promise<void> {
  assert.equal(h.opened.ok, count, `every connection made its exchange: ${JSON.stringify(h.opened)}`);
  const probe = await h.holder.probe(50);
  assert.equal(probe.ok, 50, `exchanges on held connections: ${JSON.stringify(probe)}`);
}

/** A fresh request on a new connection while the others are held: median and worst of 20. */
async function freshWhileHeld(t: TestContext, h: Held): Promise<void> {
  const fresh = await h.holder.fresh(20);
  assert.equal(fresh.ok, 20, `fresh connections: ${JSON.stringify(fresh)}`);
  const median = percentile(fresh.ms, 50);
  t.diagnostic(`fresh connection + exchange while held: median ${median} ms, max ${percentile(fresh.ms, 100)} ms over 20`);
  // The median, not the worst: on a shared two-core machine one sample may
  // wait for a scheduler slice; a proxy that slows with its connection count
  // (a scan per accept, a GC pause per request) moves the median.
  assert.ok(median < 50, `fresh request answered in ${median} ms (median), bound 50 ms`);
}

/**
 * After the connections close, RSS decays as V8 collects and shrinks its heap
 * and malloc returns freed pages; the issue allows a minute. Polled, not slept.
 */
async function rssBackToIdle(t: TestContext, m: Mesh, h: Held): Promise<void> {
  const released = await h.holder.release();
  assert.equal(released.lostWhileHeld, 0, 'no held connection was closed by the proxies');
  const start = Date.now();
  const bound = { a: h.idle.a * 1.5, b: h.idle.b * 1.5 };
  let last = { a: 0, b: 0 };
  try {
    await eventually(() => {
      last = { a: rssKb(m.proxyA), b: rssKb(m.proxyB) };
      return last.a <= bound.a && last.b <= bound.b;
    }, { timeoutMs: 70_000, intervalMs: 1000, what: 'both proxies back within 1.5x of idle RSS' });
  } finally {
    t.diagnostic(`after close (${((Date.now() - start) / 1000).toFixed(1)} s): proxy A ${last.a} KiB (idle ${h.idle.a}, held ${h.held.a}), proxy B ${last.b} KiB (idle ${h.idle.b}, held ${h.held.b})`);
    t.diagnostic(`proxy A: ${memoryParts(m.proxyA)}; ${await heapParts(m.a)}`);
    t.diagnostic(`proxy B: ${memoryParts(m.proxyB)}; ${await heapParts(m.b)}`);
    const reclaims = (p: PodProcess): string => reclaimLines(p).slice(-3).join(' | ') || 'none';
    t.diagnostic(`reclaims: proxy A ${reclaims(m.proxyA)}; proxy B ${reclaims(m.proxyB)}`);
  }
}

interface SlowEnds {
  count: number;
  how: Record<string, number>;
  status: Record<string, number>;
  endMs?: { min: number; p50: number; max: number };
  sentBytes: { min: number; max: number; of: number };
}

/**
 * 500 slow clients (test/fixtures/slow-heads.js) from A to B's HTTP server and,
 * once they are all connected, a normal client making 200 requests on fresh
 * connections, one every 15 ms: they span the slow clients' first three
 * seconds, up to the head timeout. Asserts the normal client was served
 * promptly; returns how the slow clients ended.
 */
async function slowHeads(t: TestContext, m: Mesh, o: { lineFirst: boolean; giveUpMs: number }): Promise<SlowEnds> {
  const { a, b } = m;
  const { holder: normal } = await Holder.open(a, b.ipv4, 8080, 1);
  const errorsBefore = await counter(a, 'http_protocol_errors_total');
  const earlyBefore = await counter(a, 'protocol_detect_early_upstream_total');
  const args = [fixture('slow-heads.js'), b.ipv4, '8080', '--count', '500', '--interval', '1000', '--give-up', String(o.giveUpMs), ...(o.lineFirst ? ['--line-first'] : [])];
  // The same requests alone first: on a machine shared with other work, this
  // tells a slow proxy from a busy machine when the bound below fails.
  const alone = await normal.fresh(200, 15);
  const openBefore = await counter(a, 'tcp_open_connections', 'direction="outbound"');
  const slow = a.spawn(node, args, { uid: 1000 });
  await slow.waitForLine(/"event":"connected"/);
  // "connected" is the kernel's handshake; measure once proxy A holds all 500
  // (counted open at accept, while detection runs). The burst of 500 accepts
  // itself, on a proxy that has served ~500 connections so far, is a
  // connection storm, not the slowloris this case is about: it is reported,
  // not bounded (~10 ms warm; 50-90 ms while V8 still compiles the accept path).
  const storm = performance.now();
  await eventually(async () => (await counter(a, 'tcp_open_connections', 'direction="outbound"')) - openBefore >= 500, { intervalMs: 5, what: 'proxy A holding the 500 slow clients' });
  t.diagnostic(`proxy A held the 500 slow clients ${(performance.now() - storm).toFixed(0)} ms after they connected`);
  const fresh = await normal.fresh(200, 15);
  const ends = JSON.parse((await slow.waitForLine(/^\{"event":"ended".*$/, o.giveUpMs + 10_000))[0]) as SlowEnds;
  await normal.release();
  const p99 = percentile(fresh.ms, 99);
  t.diagnostic(`slow heads: ${JSON.stringify(ends)}`);
  t.diagnostic(`normal client alone: p50 ${percentile(alone.ms, 50)} ms, p99 ${percentile(alone.ms, 99)} ms; slowest ${slowest(alone.ms, 15)}`);
  t.diagnostic(`normal client meanwhile: ${fresh.ok}/200 ok, p50 ${percentile(fresh.ms, 50)} ms, p99 ${p99} ms; slowest ${slowest(fresh.ms, 15)}`);
  t.diagnostic(`http_protocol_errors_total on proxy A: +${(await counter(a, 'http_protocol_errors_total')) - errorsBefore}`);
  // Clients quiet past the server-first window get an upstream opened early: 500 at once would be a burst of work.
  t.diagnostic(`protocol_detect_early_upstream_total on proxy A: +${(await counter(a, 'protocol_detect_early_upstream_total')) - earlyBefore}`);
  assert.equal(fresh.ok, 200, `normal requests: ${JSON.stringify(fresh.failed)}`);
  assert.ok(p99 < 50, `normal requests p99 ${p99} ms, bound 50`);
  return ends;
}

function assertClosedAtHeadTimeout(ends: SlowEnds): void {
  // The proxy sweeps its deadlines every 500 ms and arms them on the sweep's
  // clock, so a 3 s timeout fires between 2.5 and 3.5 s; a second more for a
  // loaded machine.
  assert.ok(ends.endMs && ends.endMs.min >= 2400 && ends.endMs.max <= 4500, `closed at the head timeout: ${JSON.stringify(ends.endMs)}`);
  for (const status of Object.keys(ends.status)) assert.ok(status === '408' || status === '0', `answered 408 or nothing, got ${status}`);
}

describe('limits: 10,000 idle HTTP/1 connections (plain)', () => {
  let m: Mesh | undefined;
  let idle: { a: number; b: number };
  let h: Held | undefined;

  before(async () => {
    // Head timeout short so the slow-head case below stays short (default 10 s).
    m = await meshPair({ mtls: false, env: { MESH_PROXY_HEAD_TIMEOUT: '3s' } });
    await m.b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    idle = await warmIdle(m, 8080, 'http');
  });
  after(async () => {
    await h?.holder.release().catch(() => {});
    await destroy(m);
  });

  it('holds them through both proxies at ≤ 8 KB per connection per proxy, and answers a fresh request in < 50 ms', async (t) => {
    h = await holdMany(t, m!, 8080, { protocol: 'http', count: CONNECTIONS, parallel: 200 }, idle);
    await assertAllHeld(h, CONNECTIONS);
    await freshWhileHeld(t, h);
    assert.ok(h.perConn.a <= 8, `client proxy: ${h.perConn.a.toFixed(2)} KiB per connection, bound 8`);
    assert.ok(h.perConn.b <= 8, `server proxy: ${h.perConn.b.toFixed(2)} KiB per connection, bound 8`);
  });

  it('a minute after they close, each proxy is back within 1.5x of its idle RSS', async (t) => {
    assert.ok(h, 'the connections were held');
    await rssBackToIdle(t, m!, h);
  });

  it('500 clients sending their header fields one byte a second are answered 408 at the 3 s head timeout; others promptly', async (t) => {
    const ends = await slowHeads(t, m!, { lineFirst: true, giveUpMs: 10_000 });
    assert.equal(ends.how.open ?? 0, 0, `no slow client is still open after 10 s: ${JSON.stringify(ends.how)}`);
    assertClosedAtHeadTimeout(ends);
  });

  // The whole head slowly, from its first byte: detection holds a stream that
  // begins a request line to the head timeout too, then hands it to HTTP/1 (408).
  let wholeHead: SlowEnds | undefined;
  it('500 clients sending a whole head one byte a second: others are answered promptly', async (t) => {
    wholeHead = await slowHeads(t, m!, { lineFirst: false, giveUpMs: 12_000 });
  });

  it('500 clients sending a whole head one byte a second are closed at the 3 s head timeout', () => {
    assert.ok(wholeHead, 'the slow clients ran');
    assert.equal(wholeHead.how.open ?? 0, 0, `no slow client is still open after 12 s: ${JSON.stringify(wholeHead.how)}`);
    assertClosedAtHeadTimeout(wholeHead);
  });
});

describe(`limits: ${OPAQUE_CONNECTIONS.toLocaleString('en')} idle opaque connections (mTLS)`, () => {
  let m: Mesh | undefined;
  let idle: { a: number; b: number };
  let h: Held | undefined;

  before(async () => {
    m = await meshPair({ mtls: true });
    // 5432 is in the proxy's default opaque ports: forwarded at once, each a stream of the one
    // mTLS tunnel session between the proxies.
    await startEcho(m.b, ['[::]:5432']);
    idle = await warmIdle(m, 5432, 'echo');
  });
  after(async () => {
    await h?.holder.release().catch(() => {});
    await destroy(m);
  });

  it('holds them through both proxies over mTLS, and answers a fresh connection in < 50 ms', async (t) => {
    if (OPAQUE_CONNECTIONS < CONNECTIONS) t.diagnostic(`holding ${OPAQUE_CONNECTIONS}, not ${CONNECTIONS}: the descriptor hard limit is ${HARD_LIMIT} and may not be raised here`);
    // Few handshakes at a time: this measures idle memory, not a handshake
    // storm. The client proxy's 1 s connect timeout covers the mTLS handshake,
    // and with 200 (even 50) at once on two shared cores ~0.4-1.4% of them
    // took longer than that.
    h = await holdMany(t, m!, 5432, { protocol: 'echo', count: OPAQUE_CONNECTIONS, parallel: 20 }, idle);
    await assertAllHeld(h, OPAQUE_CONNECTIONS);
    await freshWhileHeld(t, h);
  });

  // Was 54-59 KiB with an mTLS session per connection (Node's TLS socket alone is ~43 KiB a
  // side, which no Node program can size); they are streams of one tunnel session now
  // (proxy/tunnel.ts): measured 5.6 and 4.4 KiB.
  it('at ≤ 32 KB per connection per proxy', (t) => {
    assert.ok(h, 'the connections were held');
    t.diagnostic(`client proxy ${h.perConn.a.toFixed(2)} KiB, server proxy ${h.perConn.b.toFixed(2)} KiB per connection`);
    assert.ok(h.perConn.a <= 32, `client proxy: ${h.perConn.a.toFixed(2)} KiB per connection, bound 32`);
    assert.ok(h.perConn.b <= 32, `server proxy: ${h.perConn.b.toFixed(2)} KiB per connection, bound 32`);
  });

  // Was 173-190 MB 70 s after close against ~88 MB idle until the proxy gave memory back
  // when it falls quiet (proxy/memory.ts): 69-109 MB, 10-54 s after close.
  it('a minute after they close, each proxy is back within 1.5x of its idle RSS', async (t) => {
    assert.ok(h, 'the connections were held');
    await rssBackToIdle(t, m!, h);
  });

  it('opaque bulk: 1 GiB each way at once, with half-close, arrives intact at both ends', async (t) => {
    const { a, b } = m!;
    const GiB = 2 ** 30;
    // 6379 is another of the default opaque ports: one stream of a tunnel session between the proxies.
    const server = b.spawn(node, [fixture('bulk-peer.js'), 'serve', '6379', String(GiB)]);
    await server.waitForLine(/^listening/);
    const r = await a.execOk(node, [fixture('bulk-peer.js'), 'send', b.ipv4, '6379', String(GiB)], { uid: 1000, timeoutMs: 120_000 });
    const client = JSON.parse(r.stdout.trim()) as BulkReport;
    const served = JSON.parse((await server.waitForLine(/^\{"role":"server".*$/))[0]) as BulkReport;
    t.diagnostic(`1 GiB each way in ${client.ms} ms: ${((2 * GiB) / 1e6 / (client.ms / 1000)).toFixed(0)} MB/s both directions together, unpinned (correctness only: the ratio to direct belongs to bench/)`);
    assert.deepEqual([client.sent, served.received, served.receivedSha], [GiB, GiB, client.sentSha], 'client to server: every byte, in order');
    assert.deepEqual([served.sent, client.received, client.receivedSha], [GiB, GiB, served.sentSha], 'server to client: every byte, in order');
  });
});

describe('limits: past the descriptor limit', () => {
  let m: Mesh | undefined;
  // Each proxy may open 1,024 descriptors (soft = hard, so raising gets nothing);
  // its budget keeps a reserve of 64 for upstreams and admin.
  const LIMIT = 1024;

  before(async () => {
    m = await meshPair({ mtls: false, nofile: LIMIT });
    await m.b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
  });
  after(() => destroy(m));

  it('refuses new connections at once and counts them; held ones keep working; after release new ones work again', async (t) => {
    const { a, b, proxyA } = m!;
    assert.match(readFileSync(`/proc/${proxyA.child.pid}/limits`, 'utf8'), new RegExp(`^Max open files\\s+${LIMIT}\\s+${LIMIT}`, 'm'));
    const want = 1500;
    const { holder, opened } = await Holder.open(a, b.ipv4, 8080, want, { parallel: 50 });
    try {
      const refusedA = await counter(a, 'tcp_accept_refused_total', 'direction="outbound"');
      const refusedB = await counter(b, 'tcp_accept_refused_total');
      const clientFailed = Object.values(opened.failed).reduce((s, n) => s + n, 0);
      t.diagnostic(`${want} connections: ${opened.ok} held, refused ${JSON.stringify(opened.failed)} (p50 ${opened.failMs?.p50} ms, max ${opened.failMs?.max} ms after connect); tcp_accept_refused_total: proxy A outbound ${refusedA}, proxy B ${refusedB}`);
      // Half the budget at least: the budget charges two descriptors per client
      // (its own and an upstream's) until it is served as HTTP (then one).
      assert.ok(opened.ok >= (LIMIT - 64 - 64) / 2, `held ${opened.ok}: the proxy did not refuse long before its limit`);
      assert.ok(clientFailed > 0, 'some connections were past the limit');
      assert.deepEqual(Object.keys(opened.failed).filter((k) => k !== 'closed' && k !== 'reset'), [], 'refused with a close or a reset: no 502, no hang');
      // A refusal is a close at accept; a hang would wait for the client's 10 s timeout.
      assert.ok(opened.failMs !== undefined && opened.failMs.max < 2000, `refused at once: ${JSON.stringify(opened.failMs)}`);
      assert.equal(refusedA, clientFailed, 'every refusal the clients saw is counted');

      const probe = await holder.probe(20);
      assert.equal(probe.ok, 20, `held connections still answered at the limit: ${JSON.stringify(probe)}`);
      const atLimit = await holder.fresh(1);
      t.diagnostic(`a new connection while at the limit: ${JSON.stringify(atLimit.failed)}`);
    } finally {
      const released = await holder.release();
      t.diagnostic(`held connections lost while at the limit: ${released.lostWhileHeld}`);
      assert.equal(released.lostWhileHeld, 0);
    }
    // The budget recounts against the kernel (at most once a second) before it refuses.
    const { holder: after, opened: again } = await eventually(async () => {
      const r = await Holder.open(a, b.ipv4, 8080, 20, { parallel: 5 });
      if (r.opened.ok === 20) return r;
      await r.holder.release();
      throw new Error(`after release: ${JSON.stringify(r.opened)}`);
    }, { what: 'new connections accepted after the held ones closed', intervalMs: 500 });
    await after.release();
    t.diagnostic(`after release: ${again.ok}/20 new connections answered`);
  });
});
