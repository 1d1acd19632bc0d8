// HTTP/2 abuse from one client (issue 8, "What it must show" 5): a hostile h2c
// client in pod A floods B's app through both proxies while a well-behaved
// client beside it keeps requesting the same destination. The abuse must be
// contained at the hostile client's own connection to A's proxy: that
// connection is closed (GOAWAY ENHANCE_YOUR_CALM) or, where the abuse is only
// a slow or greedy client, held at no cost to anyone; the h2 connection the
// proxies share to that destination is never torn down; the well-behaved
// client sees zero failures; A's proxy stays within bounded memory and CPU.
// Then 1,000 clients that close without GOAWAY leave nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { fixture, node } from './mesh.js';
import { meshedPodPair, type PodPair } from './pod-pair.js';

interface Hostile {
  scenario: string;
  goaway: { code: number; lastStreamId: number; debug: string } | null;
  closed: boolean;
  ms: number;
  sent: number;
  statuses: Record<string, number>;
  dataBytes: number;
}

const ENHANCE_YOUR_CALM = 0xb;
// The proxy idles at ~40-55 MB RSS (issue 8's target: <= 55 MB idle, <= 64 MB
// after load). What one app connection may hold is bounded by its limits
// (proxy/h2/limits.ts: 64 KiB stream windows, 1 MiB held per connection, a
// 128 KiB header block, 64 KiB header lists), a few MB in all; the shared mesh
// connection holds at most its 4 MiB window. 128 MB leaves room for GC slack
// under load on a busy 2-core machine, while a flood that leaked per frame or
// per stream (tens of thousands of each here) would go far past it.
const RSS_BOUND_KB = 128 * 1024;
// CPU per scenario: the floods are cut within their budgets (hundreds of
// frames), so a few hundred ms of work; 5 s means a proxy kept busy by them.
const CPU_BOUND_MS = 5000;

/** From /proc (pods share the host's /proc; only the network is namespaced). */
function procStatus(pid: number): { rssKb: number; hwmKb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)![1]);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
}
const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

for (const mode of ['plain', 'mtls'] as const) describe(`h2 abuse from one client (${mode})`, () => {
  let pair: PodPair | undefined;
  let a: Pod;
  let b: Pod;
  let proxyA: PodProcess;
  let proxyB: PodProcess;
  let steady: PodProcess;
  let h2url: string;

  const metric = async (pod: Pod, name: string, direction: string): Promise<number> => {
    const m = (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
    return m.split('\n').filter((l) => l.startsWith(`${name}{direction="${direction}"`)).reduce((t, l) => t + Number(l.split(' ').pop()), 0);
  };
  /** A's proxy's connections to B's h2c port: the one every A client's h2 requests to it share. */
  const shared = async (): Promise<string[]> => {
    const r = await a.execOk('ss', ['-tnpH', 'state', 'established', 'dst', `${b.ipv4}:8081`]);
    return r.stdout.split('\n').filter((l) => l.includes(`pid=${proxyA.child.pid},`)).map((l) => l.trim().split(/\s+/)[2]!);
  };
  const progress = (): number => {
    const p = steady.lines().filter((l) => l.startsWith('{"progress"'));
    return p.length === 0 ? 0 : (JSON.parse(p[p.length - 1]!) as { progress: number }).progress;
  };
  const failures = (from: number): string[] => steady.lines().slice(from).filter((l) => l.startsWith('{"failure"'));
  const abuseLogged = (p: PodProcess): string[] => p.lines().filter((l) => l.includes('closed for abuse'));

  before(async () => {
    pair = await meshedPodPair(mode);
    ({ a, b, proxyA, proxyB } = pair);
    // B's app: HTTP/1 on 8080, h2c on 8081.
    await b.spawn(node, [fixture('http-server.js'), '8080']).waitForLine(/^listening/);
    h2url = `http://${b.ipv4}:8081`;
    steady = a.spawn(node, [fixture('h2-steady.js'), h2url, `http://${b.ipv4}:8080`], { uid: 1000 });
    await steady.waitForLine(/"progress":100\b/);
    assert.equal((await shared()).length, 1, 'one h2 connection from A\'s proxy to the destination');
  });
  after(async () => {
    await pair?.destroy();
  });

  /** Runs one hostile client beside the steady one; checks what every scenario owes. */
  // Failures the steady client saw during scenarios marked todo (known defects), kept out of the final count.
  let excused = 0;
  const abuse = async (scenario: string, maxSeconds: number, todo = false): Promise<Hostile> => {
    const [conn] = await shared();
    const [fromSteady, fromB] = [steady.lines().length, abuseLogged(proxyB).length];
    const [fromA, fromBAll] = [proxyA.lines().length, proxyB.lines().length];
    const cpu0 = cpuMs(proxyA.child.pid!);
    const r = await a.execOk(node, [fixture('h2-hostile.js'), b.ipv4, '8081', scenario, String(maxSeconds)], { uid: 1000, timeoutMs: (maxSeconds + 30) * 1000 });
    const hostile = JSON.parse(r.stdout.trim()) as Hostile;
    const cpu = cpuMs(proxyA.child.pid!) - cpu0;
    // The well-behaved client goes on: 100 more successes after the abuse, on the same shared connection.
    const seen = progress();
    await steady.waitForLine(new RegExp(`"progress":${Math.ceil((seen + 100) / 50) * 50}\\b`));
    const { rssKb, hwmKb } = procStatus(proxyA.child.pid!);
    const report = `${JSON.stringify(hostile)} cpu=${cpu}ms rss=${rssKb}kB peak=${hwmKb}kB`;
    if (todo) excused += failures(fromSteady).length;
    // On failure, what each proxy logged about failed requests meanwhile says which hop gave up.
    const failedLines = (p: PodProcess, from: number): string => p.lines().slice(from).filter((l) => l.includes('failed') || l.includes('abuse')).slice(-6).join('\n');
    assert.deepEqual(failures(fromSteady), [], `the well-behaved client saw no failure (${report})\nA: ${failedLines(proxyA, fromA)}\nB: ${failedLines(proxyB, fromBAll)}`);
    assert.deepEqual(abuseLogged(proxyB).slice(fromB), [], 'B\'s proxy saw no abuse from A\'s');
    // Still there, never torn down. A second one beside it is allowed: the
    // proxy opens another when the first is full of one client's streams.
    assert.ok((await shared()).includes(conn), 'the shared connection is the same one');
    assert.ok(hwmKb < RSS_BOUND_KB, `A's proxy peak RSS ${hwmKb} kB under ${RSS_BOUND_KB} kB`);
    assert.ok(cpu < CPU_BOUND_MS, `A's proxy used ${cpu} ms of CPU`);
    assert.equal(proxyA.child.exitCode, null);
    assert.equal(proxyB.child.exitCode, null);
    return hostile;
  };
  const closedForAbuse = (h: Hostile, within: number): void => {
    assert.equal(h.goaway?.code, ENHANCE_YOUR_CALM, JSON.stringify(h));
    assert.equal(h.closed, true, 'the proxy closed the connection');
    assert.ok(h.ms < within, `closed after ${h.ms} ms`);
  };

  // A relays some of the hostile client's cancels onto the shared connection
  // (within its own reset budget, below what B allows any peer), then lets the
  // rest of that client's streams run out unseen: B never sees a reset flood,
  // in plain mode (where B holds A to an app's budgets) as with mTLS.
  const rapidResetTodo = false;
  it('rapid reset (CVE-2023-44487): the client is cut off, its resets never reach the shared connection', { todo: rapidResetTodo }, async () => {
    const h = await abuse('rapid-reset', 20, rapidResetTodo !== false);
    closedForAbuse(h, 10_000);
    // Its budget is 200 at once then 100/s: the client got nowhere near a flood.
    assert.ok(h.sent < 50_000, `${h.sent} streams opened before the GOAWAY`);
    await proxyA.waitForLine(/h2 connection closed for abuse .*rapid reset/);
  });

  it('SETTINGS flood: the client is cut off', async () => {
    closedForAbuse(await abuse('settings', 20), 10_000);
    await proxyA.waitForLine(/h2 connection closed for abuse .*SETTINGS flood/);
  });

  it('PING flood: the client is cut off', async () => {
    closedForAbuse(await abuse('ping', 20), 10_000);
    await proxyA.waitForLine(/h2 connection closed for abuse .*PING flood/);
  });

  it('endless CONTINUATION: the client is cut off once its header block passes the cap', async () => {
    const h = await abuse('continuation', 20);
    closedForAbuse(h, 10_000);
    // The 128 KiB cap is what the proxy reads; what the client manages to write
    // before the GOAWAY reaches it also fills the kernel's socket buffers
    // (several MB on a veth pair under load): bounded, not a stream without end.
    assert.ok(h.sent * 16_000 < 16_000_000, `${h.sent} CONTINUATION frames sent`);
    await proxyA.waitForLine(/h2 connection closed for abuse .*header block beyond its cap/);
  });

  it('a 4 MB header list in a 5 KB block: 431 for that stream, the connection lives on', async () => {
    const h = await abuse('header-bomb', 20);
    // RFC 9113 §10.5.1: the list is refused per stream; the HPACK state stays in sync, so the next request is served.
    assert.deepEqual(h.statuses, { 431: 1, 200: 1 }, JSON.stringify(h));
    assert.equal(h.goaway, null);
  });

  it('zero window: 100 streams of 10 MB never read cost the client its own streams only', async () => {
    // Not abuse to cut off (a slow reader looks the same): it must simply cost
    // nothing beyond its windows, and nobody else's requests.
    const h = await abuse('zero-window', 8);
    assert.equal(h.dataBytes, 0, 'no DATA beyond a window of 0');
    assert.equal(h.goaway, null);
    assert.ok((h.statuses['200'] ?? 0) > 0, `response heads came: ${JSON.stringify(h)}`);
  });

  it('the well-behaved client saw zero failures throughout', async () => {
    await steady.stop();
    const total = JSON.parse(steady.lines().filter((l) => l.startsWith('{"ok"')).pop()!) as { ok: number; failed: number; errors: string[]; maxMs: number };
    assert.equal(total.failed, excused, `beyond ${excused} during scenarios marked todo: ${JSON.stringify(total.errors)}`);
    assert.ok(total.ok >= 600);
  });

  it('1,000 h2c clients that close without GOAWAY leave no socket, fd or open connection behind', async (t) => {
    // Everyone before is gone: A's outbound side counts no open connection.
    await eventually(async () => assert.equal(await metric(a, 'tcp_open_connections', 'outbound'), 0), { what: 'A idle' });
    const [pidA, pidB] = [proxyA.child.pid!, proxyB.child.pid!];
    const [fdsA, fdsB] = [fdCount(pidA), fdCount(pidB)];
    const openB = await metric(b, 'tcp_open_connections', 'inbound');
    const r = await a.execOk(node, [fixture('h2-burst.js'), b.ipv4, '8081', '1000', '50'], { uid: 1000, timeoutMs: 120_000 });
    const burst = JSON.parse(r.stdout.trim()) as { ok: number; failed: number; errors: string[] };
    assert.deepEqual([burst.ok, burst.failed], [1000, 0], JSON.stringify(burst.errors));
    const closeWait = async (pod: Pod): Promise<string> => (await pod.execOk('ss', ['-tanH', 'state', 'close-wait'])).stdout.trim();
    await eventually(async () => {
      assert.equal(await closeWait(a), '', 'no CLOSE-WAIT in A');
      assert.equal(await closeWait(b), '', 'no CLOSE-WAIT in B');
      assert.equal(await metric(a, 'tcp_open_connections', 'outbound'), 0, 'A counts none of them open');
      // B saw only the connection A's proxy shares to the app, as before the burst.
      assert.equal(await metric(b, 'tcp_open_connections', 'inbound'), openB);
      assert.ok(fdCount(pidA) <= fdsA + 4, `A's proxy fds ${fdCount(pidA)} vs ${fdsA} before`);
      assert.ok(fdCount(pidB) <= fdsB + 4, `B's proxy fds ${fdCount(pidB)} vs ${fdsB} before`);
    }, { what: 'every burst connection released' });
    const hwm = procStatus(pidA).hwmKb;
    t.diagnostic(`A's proxy peak RSS over the whole suite: ${hwm} kB`);
    assert.ok(hwm < RSS_BOUND_KB, `A's proxy peak RSS ${hwm} kB under ${RSS_BOUND_KB} kB`);
  });
});
