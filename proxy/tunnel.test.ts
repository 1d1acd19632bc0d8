// Tunnels in-process: a client socket joined to a CONNECT stream on our h2
// client, our h2 server's TunnelServer dialling a loopback "app". No root, no
// TLS (the session's mTLS is transport/tls.ts's business): what is tested is
// the join, half-close each way, resets each way, backpressure, refusals, and
// that many connections share one session without leaving streams behind.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SocketAddress } from '../native/index.js';
import { H2ClientConnection } from './h2/client.js';
import { PROFILES } from './h2/limits.js';
import { ourClient, ourServer, type OurServer } from './h2/testkit.js';
import type { Dispatcher, RequestListener, ServerStream } from './message/types.js';
import { dialTcp, forwardOpaque, type ForwardResult } from './opaque.js';
import { authorityPort, connectHead, forwardTunnel, TunnelServer, type TunnelHost } from './tunnel.js';
import { API_ID, PlainMeshConnector } from './forward/testkit.js';
import { armedChunks, recycledChunks } from './transport/chunks.js';

const LOCAL: SocketAddress = { address: '127.0.0.1', port: 0, family: 4 };
const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
  assert.deepEqual(leftOpen, [], 'every connection the tests made was closed by the tunnel');
});

function sha(chunks: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

/** Sockets still open when the file's tests are done: a join that left one open is a leak. */
const leftOpen: string[] = [];

async function listen(onSocket: (s: Socket) => void, what: string): Promise<number> {
  const open = new Set<Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => {
    if (open.size > 0) leftOpen.push(`${what}: ${open.size}`);
    for (const s of open) s.destroy();
    return new Promise((r) => srv.close(r));
  });
  return (srv.address() as AddressInfo).port;
}

/** Reads a socket to its end (or reset); what came, and how it ended. */
function readAll(s: Socket): Promise<{ chunks: Buffer[]; bytes: number; how: 'end' | 'reset' | 'close' }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let how: 'end' | 'reset' | 'close' = 'close';
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
    });
    s.on('end', () => (how = 'end'));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') how = 'reset';
    });
    s.on('close', () => resolve({ chunks, bytes, how }));
  });
}

function connect(port: number): Promise<Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  return once(s, 'connect').then(() => s);
}

/** The two proxies' sides, wired over loopback: a front port for clients, results of both sides. */
interface Rig {
  front: number;
  server: OurServer;
  session: H2ClientConnection;
  clientResults: ForwardResult[];
  serverResults: ForwardResult[];
  /** Resolves when `n` connections have been reported closed on both sides. */
  settled(n: number): Promise<void>;
  host: TunnelHost;
}

async function rig(appPort: number, opts: { refuse?: boolean; session?: () => Dispatcher; peek?: number; dialled?: (s: Socket) => void } = {}): Promise<Rig> {
  const clientResults: ForwardResult[] = [];
  const serverResults: ForwardResult[] = [];
  let waiters: Array<() => void> = [];
  const notify = (): void => {
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  };
  const host: TunnelHost = {
    open: (target) =>
      opts.refuse === true
        ? { refused: 'MESH_FD_EXHAUSTED', why: 'test: no descriptor' }
        : {
            target,
            closed: (r) => {
              serverResults.push(r);
              notify();
            },
          },
    dial: async (target) => {
      const s = await dialTcp(target, 1000);
      opts.dialled?.(s);
      return s;
    },
  };
  const server = await ourServer(new TunnelServer(LOCAL, host), { peer: 'tunnel' });
  cleanup.push(() => server.close());
  const session = await ourClient(server.port, { peer: 'tunnel' });
  cleanup.push(() => session.destroy());
  const target: SocketAddress = { ...LOCAL, port: appPort };
  const forward = (s: Socket): void =>
    void forwardTunnel(s, target, opts.session ?? (() => session)).then((r) => {
      clientResults.push(r);
      notify();
    });
  // peek: as protocol detection does, the first bytes (at least this many) are read and put back before forwarding.
  const front = await listen((s) => {
    const want = opts.peek;
    if (want === undefined) return forward(s);
    const first: Buffer[] = [];
    let have = 0;
    const onData = (b: Buffer): void => {
      first.push(b);
      have += b.length;
      if (have < want) return;
      s.pause();
      s.removeListener('data', onData);
      s.unshift(Buffer.concat(first));
      forward(s);
    };
    s.on('data', onData);
  }, 'front');
  const settled = async (n: number): Promise<void> => {
    while (clientResults.length < n || serverResults.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { front, server, session, clientResults, serverResults, settled, host };
}

describe('tunnel: opaque connections as CONNECT streams of one session', () => {
  it('authorityPort reads the port of an IPv4 or IPv6 authority, 0 when there is none', () => {
    assert.equal(authorityPort('10.0.0.7:5432'), 5432);
    assert.equal(authorityPort('[fd00::7]:65535'), 65535);
    for (const bad of ['10.0.0.7', '5432', '10.0.0.7:', '10.0.0.7:0', '10.0.0.7:65536', 'h:5x', 'h:+80', 'h:1234567', '[fd00::7]']) assert.equal(authorityPort(bad), 0, bad);
  });

  describe('bytes both ways with half-close', () => {
    let r: Rig;
    // The app reads the client's bytes to their end, then answers with their hash and more bytes after the client's FIN.
    before(async () => {
      const app = await listen((s) => {
        const h = createHash('sha256');
        let n = 0;
        s.on('data', (c: Buffer) => {
          h.update(c);
          n += c.length;
        });
        s.on('end', () => {
          s.write(`${h.digest('hex')} ${n}\n`);
          const reply = Buffer.alloc(1 << 20, n & 0xff);
          s.end(reply);
        });
      }, 'app (half-close)');
      r = await rig(app);
    });

    it('50 connections at once: every byte each way, FIN carried each way, one session, no stream left', async () => {
      const N = 50;
      const runs = Array.from({ length: N }, async (_, i) => {
        const c = await connect(r.front);
        const body = Buffer.alloc(256 * 1024 + i * 997, i + 1);
        const got = readAll(c);
        c.end(body); // half-close: the app answers only after it saw our FIN
        const res = await got;
        const text = Buffer.concat(res.chunks);
        const line = text.subarray(0, text.indexOf(10) + 1).toString();
        assert.equal(line, `${sha([body])} ${body.length}\n`, `connection ${i}: the app saw every byte, in order, then our FIN`);
        assert.equal(text.length - line.length, 1 << 20, `connection ${i}: the app's bytes after our FIN all arrived`);
        assert.equal(res.how, 'end', `connection ${i}: ended by a FIN, not a reset`);
      });
      await Promise.all(runs);
      await r.settled(N);
      assert.deepEqual(r.clientResults.map((x) => x.error), Array(N).fill(undefined));
      assert.deepEqual(r.serverResults.map((x) => x.error), Array(N).fill(undefined));
      assert.equal(r.server.conns.length, 1, 'every connection rode the one session');
      assert.equal(r.session.streams.size, 0, 'no client stream left open');
      assert.equal(r.server.conns[0]!.streams.size, 0, 'no server stream left open');
      const total = r.serverResults.reduce((s, x) => s + x.bytesFromClient, 0);
      assert.equal(total, Array.from({ length: N }, (_, i) => 256 * 1024 + i * 997).reduce((a, b) => a + b, 0), 'bytes from clients, counted by the server side');
    });
  });

  it('a server that speaks first is heard before the client says anything', async () => {
    const app = await listen((s) => {
      s.write('220 hello\r\n');
      s.on('end', () => s.end());
    }, 'app (server first)');
    const r = await rig(app);
    const c = await connect(r.front);
    const [greeting] = (await once(c, 'data')) as [Buffer];
    assert.equal(greeting.toString(), '220 hello\r\n');
    c.destroy();
  });

  it('an app that refuses the connection: the client is reset, both sides count why, nothing is left open', async () => {
    // A port nobody listens on: bind one, then close it.
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const dead = (probe.address() as AddressInfo).port;
    await new Promise((res) => probe.close(res));
    const r = await rig(dead);
    const c = await connect(r.front);
    const res = await readAll(c);
    assert.equal(res.how, 'reset', 'the client sees a reset, as without the mesh');
    await r.settled(1);
    assert.equal(r.serverResults[0]!.error, 'MESH_CONNECT_REFUSED');
    assert.equal(r.clientResults[0]!.error, 'MESH_STREAM_RESET');
    assert.match(r.clientResults[0]!.detail ?? '', /502: MESH_CONNECT_REFUSED/);
    assert.equal(r.session.streams.size, 0);
    await waitFor(() => r.server.conns[0]!.streams.size === 0, 'server stream closed');
  });

  it('a refusal by the server proxy (no descriptor) resets the client and says why', async () => {
    const app = await listen(() => {}, 'app (refused by proxy)');
    const r = await rig(app, { refuse: true });
    const c = await connect(r.front);
    const res = await readAll(c);
    assert.equal(res.how, 'reset');
    await waitFor(() => r.clientResults.length === 1, 'client side reported');
    assert.match(r.clientResults[0]!.detail ?? '', /503: MESH_FD_EXHAUSTED/);
    await waitFor(() => r.session.streams.size === 0 && r.server.conns[0]!.streams.size === 0, 'streams closed both sides');
  });

  it('a client reset reaches the app as a reset; an app reset reaches the client as one', async () => {
    const appSeen: Array<Promise<{ how: string }>> = [];
    const appSockets: Socket[] = [];
    const app = await listen((s) => {
      appSockets.push(s);
      appSeen.push(readAll(s));
      s.write('ready');
    }, 'app (resets)');
    const r = await rig(app);
    // Client resets.
    const c1 = await connect(r.front);
    await once(c1, 'data');
    c1.resetAndDestroy();
    assert.equal((await appSeen[0]!).how, 'reset', 'the app saw a reset, not a FIN');
    // App resets.
    const c2 = await connect(r.front);
    const got = readAll(c2);
    await once(c2, 'data');
    appSockets[1]!.resetAndDestroy();
    assert.equal((await got).how, 'reset', 'the client saw a reset, not a FIN');
    await r.settled(2);
    assert.ok(r.clientResults.every((x) => x.error === 'MESH_STREAM_RESET'), JSON.stringify(r.clientResults));
    assert.ok(r.serverResults.every((x) => x.error === 'MESH_STREAM_RESET'), JSON.stringify(r.serverResults));
    assert.equal(r.session.streams.size, 0);
    await waitFor(() => r.server.conns[0]!.streams.size === 0, 'server streams closed');
  });

  it('an app that does not read holds back the client: what the proxies buffer is bounded, then every byte arrives', async () => {
    let appSocket: Socket | undefined;
    let appGot: Promise<{ chunks: Buffer[]; bytes: number }> | undefined;
    const app = await listen((s) => {
      s.pause();
      s.on('end', () => s.end());
      appSocket = s;
    }, 'app (not reading)');
    const r = await rig(app);
    const c = await connect(r.front);
    const total = 48 << 20;
    const chunk = Buffer.alloc(1 << 20);
    const sent: Buffer[] = [];
    for (let i = 0; i < total / chunk.length; i++) {
      const b = Buffer.from(chunk.fill(i & 0xff));
      sent.push(b);
      c.write(b);
    }
    c.end();
    // The client's bytes stop moving: the kernel's buffers, the stream's window and the join's pause hold them.
    let last = -1;
    let still = 0;
    while (still < 5) {
      await new Promise((res) => setTimeout(res, 30));
      const now = c.writableLength;
      still = now === last ? still + 1 : 0;
      last = now;
    }
    const inFlight = total - c.writableLength;
    assert.ok(inFlight < 24 << 20, `only ${(inFlight / 1048576).toFixed(1)} MiB of 48 left the client while the app read nothing (kernel buffers and one stream window)`);
    const held = [...r.server.conns[0]!.streams.values()].reduce((s, st) => s + st.held, 0);
    const window = PROFILES.tunnel.streamWindow;
    assert.ok(held <= window, `the server proxy holds ${held} bytes for the paused app: at most one stream window (${window})`);
    appGot = readAll(appSocket!);
    appSocket!.resume();
    const got = await appGot;
    assert.equal(got.bytes, total);
    assert.equal(sha(got.chunks), sha(sent), 'every byte, in order');
    c.destroy();
  });

  it('bytes read before the stream was set up (detection put them back) reach the app first, then the rest', async () => {
    const app = await listen((s) => s.pipe(s), 'app (echo, peeked client)');
    const r = await rig(app, { peek: 1 });
    const c = await connect(r.front);
    const got = readAll(c);
    c.write('first bytes, peeked;');
    // The rest only once the front has read the first (the tunnel is being set up by then).
    await new Promise<void>((resolve) => setImmediate(resolve));
    c.end(' the rest');
    const res = await got;
    assert.equal(Buffer.concat(res.chunks).toString(), 'first bytes, peeked; the rest');
    await r.settled(1);
  });

  it('a client that sends 1 MiB and its FIN at once: what the socket held before forwarding (200 KB, more than a chunk) and the rest arrive whole', async () => {
    const app = await listen((s) => s.pipe(s), 'app (echo, eager client)');
    const r = await rig(app, { peek: 200_000 });
    const c = await connect(r.front);
    const got = readAll(c);
    const sent = randomBytes(1 << 20);
    c.end(sent);
    const res = await got;
    assert.equal(res.bytes, sent.length);
    assert.equal(sha(res.chunks), sha([sent]));
    await r.settled(1);
  });

  it('16 MiB of random bytes each way through an echoing app: whole and in order, the DATA frames’ chunks recycled as the app’s socket takes them', async () => {
    const app = await listen((s) => s.pipe(s), 'app (echo)');
    const r = await rig(app);
    const c = await connect(r.front);
    const sent = randomBytes(16 << 20);
    const before = recycledChunks();
    const landedBefore = armedChunks().landed;
    const got = readAll(c);
    // In pieces of any length, as an app writes.
    for (let off = 0; off < sent.length; ) {
      const n = Math.min(sent.length - off, 1 + Math.floor(Math.random() * 200_000));
      if (!c.write(sent.subarray(off, off + n))) await once(c, 'drain');
      off += n;
    }
    c.end();
    const res = await got;
    assert.equal(res.bytes, sent.length);
    assert.equal(sha(res.chunks), sha([sent]), 'every byte back, in order');
    // Each way the 64 KiB DATA frames between the proxies land in chunks; those the app's socket (or the client's) wrote come back.
    const back = recycledChunks() - before;
    assert.ok(back >= (2 * sent.length) / (64 << 10) / 2, `${back} chunks recycled for ${(2 * sent.length) / (64 << 10)} frames' worth`);
    // Long reads of the client's and the app's sockets landed in chunks to begin with (no copy out of the shared buffer).
    const landed = armedChunks().landed - landedBefore;
    assert.ok(landed >= sent.length / (64 << 10) / 2, `${landed} long reads landed in a chunk`);
    await r.settled(1);
    assert.deepEqual([r.clientResults[0]!.error, r.serverResults[0]!.error], [undefined, undefined]);
    // Both sockets closed: no chunk is left placed for a read that will never come.
    assert.equal(armedChunks().armed, 0);
  });

  it('a client socket read is one DATA frame at most: 16 MiB from another process reach the app in 64 KiB writes, none split off', async () => {
    // A read placed in a chunk was once given the whole chunk (64 KiB + 16): 65,552 bytes whenever
    // the kernel held that much, sent as a 64 KiB frame and a 16-byte one, so the server side wrote
    // such reads to the app twice. The sender is another process, so the kernel holds a queue
    // between our reads, as with a real client.
    const app = await listen((s) => s.resume().on('end', () => s.end()), 'app (sink, then its FIN)');
    const writes: number[] = [];
    const r = await rig(app, {
      dialled: (s) => {
        const write = s.write.bind(s) as (chunk: Buffer, cb?: (err?: Error | null) => void) => boolean;
        (s as unknown as { write: typeof write }).write = (chunk, cb) => (writes.push(chunk.length), write(chunk, cb));
      },
    });
    const sender = spawn(process.execPath, ['-e', `const s = require('node:net').connect(${r.front}, '127.0.0.1', () => s.end(Buffer.alloc(16 << 20, 7))); s.resume();`], { stdio: 'inherit' });
    const [code] = (await once(sender, 'exit')) as [number | null];
    assert.equal(code, 0, 'the sender finished');
    await r.settled(1);
    const total = writes.reduce((a, b) => a + b, 0);
    assert.equal(total, 16 << 20, 'every byte written to the app');
    assert.ok(Math.max(...writes) <= 64 << 10, `no write longer than a frame (longest ${Math.max(...writes)})`);
    const short = writes.filter((n) => n < 1024).length;
    assert.ok(short <= writes.length / 10, `${short} of ${writes.length} writes to the app were under 1 KiB`);
  });

  it('a CONNECT whose response ends while the request’s end waits behind a paused reader still delivers the rest and the end', async () => {
    // The server side of a tunnel, by hand: a reader that takes one chunk and pauses (an app not
    // reading), the app's FIN (our END_STREAM) sent while the request's END_STREAM waits, then reading again.
    let stream: ServerStream | undefined;
    let paused = true;
    let got = 0;
    let ended = false;
    const reader: RequestListener = {
      onData: (c) => ((got += c.length), !paused),
      onEnd: () => void (ended = true),
      onReset: (r) => assert.fail(`reset: ${r.error.message}`),
      onWritable() {},
    };
    const server = await ourServer({ onRequest: (st) => ((stream = st), st.listen(reader)) }, { peer: 'tunnel' });
    cleanup.push(() => server.close());
    const client = await ourClient(server.port, { peer: 'tunnel' });
    cleanup.push(() => client.destroy());
    let responseEnded = false;
    const cs = client.request(connectHead({ ...LOCAL, port: 1 }), false, {
      onContinue() {},
      onResponse() {},
      onData: () => true,
      onEnd: () => void (responseEnded = true),
      onReset: (r) => assert.fail(`client reset: ${r.error.message}`),
      onWritable() {},
    });
    const body = Buffer.alloc(300_000, 1);
    cs.write(body);
    cs.end();
    await waitFor(() => stream !== undefined, 'the CONNECT arrived');
    const st = stream as unknown as { remoteEnded: boolean; endDelivered: boolean; closed: boolean };
    await waitFor(() => st.remoteEnded, 'the request’s END_STREAM arrived');
    assert.equal(st.endDelivered, false, 'and waits behind the paused reader');
    stream!.respond({ status: 200, reason: '', version: 20, headers: [] }, false);
    stream!.end(); // the app's FIN first
    await waitFor(() => responseEnded, 'the client saw the response end');
    assert.equal(st.closed, false, 'the stream is still open: its request side is not done');
    paused = false;
    stream!.resume();
    await waitFor(() => ended, 'the request’s end delivered');
    assert.equal(got, body.length, 'every byte of the request body');
    await waitFor(() => st.closed && server.conns[0]!.streams.size === 0, 'the stream closed once both sides were done');
  });

  it('a stream the session refuses before processing it goes again on another session', async () => {
    const app = await listen((s) => s.end('hi'), 'app (retry)');
    const server = await ourServer(new TunnelServer(LOCAL, { open: (target) => ({ target, closed: () => {} }), dial: (t) => dialTcp(t, 1000) }), { peer: 'tunnel' });
    cleanup.push(() => server.close());
    const first = await ourClient(server.port, { peer: 'tunnel' });
    const second = await ourClient(server.port, { peer: 'tunnel' });
    cleanup.push(() => first.destroy(), () => second.destroy());
    first.close(); // GOAWAY: it takes no new streams, and refuses them (MESH_H2_REFUSED)
    let asked = 0;
    const r = await rig(app, { session: () => (asked++ === 0 ? first : second) });
    const c = await connect(r.front);
    const got = readAll(c);
    c.end();
    const res = await got;
    assert.equal(Buffer.concat(res.chunks).toString(), 'hi');
    assert.equal(res.how, 'end');
    assert.equal(asked, 2, 'asked for a session twice');
  });

  it('a peer that closes the session without speaking HTTP/2 (an older proxy): the connection goes, unread, to the fallback', async () => {
    const app = await listen((s) => {
      s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`));
      s.on('end', () => s.end());
    }, 'app (fallback)');
    // The "older proxy": takes the connection, reads the preface and closes without SETTINGS.
    const old = await listen((s) => s.once('data', () => s.destroy()), 'older proxy');
    const oldSession = new H2ClientConnection(await connect(old), { peer: 'tunnel' });
    cleanup.push(() => oldSession.destroy());
    let asked = 0;
    let fellBack = 0;
    const results: ForwardResult[] = [];
    const target: SocketAddress = { ...LOCAL, port: app };
    const front = await listen((s) => {
      void forwardTunnel(
        s,
        target,
        () => (asked++, undefined), // by the retry, the endpoint is known to take no tunnels
        () => (fellBack++, forwardOpaque(s, target, { connectTimeoutMs: 1000 })),
        oldSession,
      ).then((r) => results.push(r));
    }, 'front (fallback)');
    const c = await connect(front);
    const got = readAll(c);
    c.end('hello');
    const res = await got;
    assert.equal(Buffer.concat(res.chunks).toString(), 'echo:hello', 'the client’s first bytes were not lost on the way');
    assert.equal(res.how, 'end');
    assert.deepEqual([asked, fellBack], [1, 1]);
    await waitFor(() => results.length === 1, 'reported');
    assert.equal(results[0]!.error, undefined);
  });

  it('the connector takes a peer whose session closed before it spoke HTTP/2 as one without tunnels', async () => {
    const old = await listen((s) => s.once('data', () => s.destroy()), 'older proxy (connector)');
    const connector = new PlainMeshConnector(() => assert.fail('no HTTP/1 pool here'));
    const target: SocketAddress = { ...LOCAL, port: old };
    const session = connector.tunnel(target, `127.0.0.1:${old}`, API_ID);
    assert.ok(session !== undefined, 'a session is offered at first');
    const reset = await new Promise<string>((resolve) => {
      session.request(connectHead(target), false, {
        onContinue() {},
        onResponse: () => resolve('answered'),
        onData: () => true,
        onEnd() {},
        onReset: (r) => resolve(r.error.code),
        onWritable() {},
      });
    });
    assert.equal(reset, 'MESH_H2_REFUSED', 'nothing was processed: safe to send again');
    // The session's close, which marks the peer, came in the same turn as the reset.
    assert.equal(connector.tunnel(target, `127.0.0.1:${old}`, API_ID), undefined, 'the peer is marked as taking no tunnels');
    assert.deepEqual(connector.meshedDials.map((d) => d.protocol), ['tunnel'], 'dialled once, as a tunnel session');
  });

  it('a CONNECT to one of the proxy’s own ports is refused (403) without dialling anything', async () => {
    let dialled = 0;
    const server = await ourServer(new TunnelServer(LOCAL, { open: (target) => ({ target, closed: () => {} }), dial: (t) => (dialled++, dialTcp(t, 1000)) }, new Set([4143, 4191])), { peer: 'tunnel' });
    cleanup.push(() => server.close());
    const client = await ourClient(server.port, { peer: 'tunnel' });
    cleanup.push(() => client.destroy());
    const answered = await new Promise<{ status: number; error: string | undefined }>((resolve, reject) => {
      client.request(connectHead({ ...LOCAL, port: 4191 }), false, {
        onContinue() {},
        onResponse: (h) => resolve({ status: h.status, error: h.headers[h.headers.indexOf('mesh-proxy-error') + 1] }),
        onData: () => true,
        onEnd() {},
        onReset: (e) => reject(e.error),
        onWritable() {},
      });
    });
    assert.deepEqual(answered, { status: 403, error: 'MESH_CONNECT_REFUSED' });
    assert.equal(dialled, 0);
    await waitFor(() => server.conns[0]!.streams.size === 0 && client.streams.size === 0, 'the stream closed on both sides');
  });

  it('a request other than CONNECT on a tunnel session is answered 400 and closed', async () => {
    const server = await ourServer(new TunnelServer(LOCAL, { open: () => assert.fail('not opened'), dial: () => assert.fail('not dialled') }), { peer: 'tunnel' });
    cleanup.push(() => server.close());
    const client = await ourClient(server.port, { peer: 'tunnel' });
    cleanup.push(() => client.destroy());
    const status = await new Promise<number>((resolve, reject) => {
      client.request({ method: 'GET', target: '/', scheme: 'http', authority: 'x', version: 20, headers: [] }, true, {
        onContinue() {},
        onResponse: (h) => resolve(h.status),
        onData: () => true,
        onEnd() {},
        onReset: (e) => reject(e.error),
        onWritable() {},
      });
    });
    assert.equal(status, 400);
    await waitFor(() => server.conns[0]!.streams.size === 0, 'server stream closed');
  });
});

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
