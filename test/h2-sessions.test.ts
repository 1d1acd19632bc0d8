// The proxy at its limits, continued (issue 8, "What it must show" item 1): idle mTLS HTTP/2
// sessions between two proxies, each to a destination of its own, and what each costs. Its own
// file: the limits suite fills most of a file's time budget on its own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { anonKb, counter, destroy, heapParts, memoryParts, meshPair, reclaimedMoreThan, reclaims, type Mesh } from './limits-kit.js';
import { fixture, node } from './mesh.js';

// Each destination port is a session of its own between the proxies (one mTLS connection,
// HTTP/2), kept open, idle, once its request is done. The app closes every connection it
// answers and the client closes its own, so what stays is the sessions alone. Both readings are
// taken after the proxy's own memory-reducing collection (its reclaimer runs when it falls
// quiet: after start-up, after the sessions were opened), so garbage a collection would free
// counts on neither side; on anonymous memory, since node's file pages come and go with the
// reclaimer and do not grow with sessions.
const SESSIONS = 1_000;
const SESSION_BASE_PORT = 20_000;
const WARM_SESSIONS = 50;

describe(`limits: ${SESSIONS.toLocaleString('en')} idle mTLS HTTP/2 sessions between the proxies`, () => {
  let m: Mesh | undefined;
  let idle: { a: number; b: number };

  before(async () => {
    // Discovery is asked about each new port; its answer (meshed, whom to expect) is waited for
    // longer than the default second, so no first request goes plaintext meanwhile.
    m = await meshPair({ mtls: true, env: { MESH_PROXY_DISCOVERY_WAIT: '10s' } });
    await m.b.spawn(node, [fixture('many-ports.js'), 'serve', String(SESSION_BASE_PORT), String(WARM_SESSIONS + SESSIONS)]).waitForLine(/^listening/, 30_000);
    const warm = await m.a.execOk(node, [fixture('many-ports.js'), 'visit', m.b.ipv4, String(SESSION_BASE_PORT), String(WARM_SESSIONS), '10'], { uid: 1000, timeoutMs: 60_000 });
    assert.equal(JSON.parse(warm.stdout).ok, WARM_SESSIONS, `warm-up: ${warm.stdout}`);
    // Start-up counts as load: its reclaim comes once the proxy is quiet, before or after the warm-up.
    await Promise.all([reclaimedMoreThan(m.proxyA, 0), reclaimedMoreThan(m.proxyB, 0)]);
    idle = { a: anonKb(m.proxyA), b: anonKb(m.proxyB) };
  });
  after(() => destroy(m));

  // Sealed sessions (proxy/transport/sealed.ts): Node's TLS socket (~43 KiB a side however idle:
  // OpenSSL's SSL, its record buffers, Node's ciphertext rings) comes off each session once its
  // handshake is done; what stays is the TCP socket, the record keys and the HTTP/2 state.
  // Before that: 77-80 KiB a session in the client proxy, 62-69 in the server proxy.
  it('holds them at ≤ 40 KB per session per proxy', async (t) => {
    const { a, b, proxyA, proxyB } = m!;
    const seen = { a: reclaims(proxyA), b: reclaims(proxyB) };
    const r = await a.execOk(node, [fixture('many-ports.js'), 'visit', b.ipv4, String(SESSION_BASE_PORT + WARM_SESSIONS), String(SESSIONS), '20'], { uid: 1000, timeoutMs: 120_000 });
    const visited = JSON.parse(r.stdout) as { ok: number; failed: Record<string, number>; ms: number };
    assert.equal(visited.ok, SESSIONS, `every destination answered: ${r.stdout}`);
    // Every one a mutual-TLS session (the server proxy's count), and nothing else open between the pods.
    const sessions = async (): Promise<{ mtls: number; tcp: number }> => ({
      mtls: await counter(b, 'tcp_open_connections', 'tls="true"'),
      tcp: (await a.execOk('ss', ['-tnH', 'state', 'established', 'dst', b.ipv4])).stdout.trim().split('\n').filter(Boolean).length,
    });
    const want = { mtls: WARM_SESSIONS + SESSIONS, tcp: WARM_SESSIONS + SESSIONS };
    assert.deepEqual(await sessions(), want, 'one mTLS session per destination port between the proxies');
    const before = { a: anonKb(proxyA), b: anonKb(proxyB) };
    // Opening them is load: the reclaim that follows is the one after the sessions were opened.
    await Promise.all([reclaimedMoreThan(proxyA, seen.a), reclaimedMoreThan(proxyB, seen.b)]);
    // Read before anything asks B for its /metrics again: a scrape of 1,000 destinations' series
    // is megabytes of text whose garbage would count as sessions until the next collection.
    const held = { a: anonKb(proxyA), b: anonKb(proxyB) };
    assert.deepEqual(await sessions(), want, 'the sessions stayed open, idle');
    const per = { a: (held.a - idle.a) / SESSIONS, b: (held.b - idle.b) / SESSIONS };
    t.diagnostic(`${SESSIONS} sessions opened in ${visited.ms} ms; anonymous memory, each reading after the proxy's memory-reducing collection: proxy A ${idle.a} -> ${held.a} KiB (${per.a.toFixed(2)} KiB a session; ${before.a} before the collection), proxy B ${idle.b} -> ${held.b} KiB (${per.b.toFixed(2)} KiB a session; ${before.b} before)`);
    t.diagnostic(`proxy A: ${memoryParts(proxyA)}; ${await heapParts(a)}`);
    t.diagnostic(`proxy B: ${memoryParts(proxyB)}; ${await heapParts(b)}`);
    // What a scrape of 1,000 destinations' series costs (size in bytes, seconds), for the note.
    for (const [pod, name] of [[a, 'A'], [b, 'B']] as const) {
      const r = await pod.execOk('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} bytes in %{time_total} s', 'http://127.0.0.1:4191/metrics']);
      t.diagnostic(`proxy ${name} /metrics: ${r.stdout}`);
    }
    assert.ok(per.a <= 40, `client proxy: ${per.a.toFixed(2)} KiB a session, bound 40`);
    assert.ok(per.b <= 40, `server proxy: ${per.b.toFixed(2)} KiB a session, bound 40`);
  });
});
