import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { detect, detectDefaults, type Detected, type DetectOptions } from './index.js';
import { captureClientHello, Loopback, readAll, received } from './testkit.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const opts = { timeoutMs: 5_000, maxBytes: 8192 };
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

const events = ['readable', 'data', 'end', 'error', 'close'] as const;
const listeners = (s: Socket): number[] => events.map((e) => s.listenerCount(e));

/** Asserts detection left nothing behind: its listeners and timer gone, the socket paused. */
function assertHandedOver(socket: Socket, before: { listeners: number[]; timers: number }): void {
  assert.deepEqual(listeners(socket), before.listeners);
  assert.equal(timers(), before.timers);
  if (!socket.destroyed) {
    assert.equal(socket.isPaused(), true);
    assert.equal(socket.readableFlowing, false);
  }
}

describe('detect', () => {
  let net: Loopback;
  before(async () => (net = await Loopback.open()));
  after(() => net.close());

  /** Detects on a fresh connection whose client runs `script`; returns the verdict and the replayed bytes. */
  async function run(script: (client: Socket, server: Socket) => Promise<void> | void, o: DetectOptions = opts): Promise<{ result: Detected; replay: Buffer; ms: number }> {
    const { client, server } = await net.pair();
    const before = { listeners: listeners(server), timers: timers() };
    const start = performance.now();
    const detected = detect(server, o);
    await script(client, server);
    const result = await detected;
    const ms = performance.now() - start;
    assertHandedOver(server, before);
    if (!client.destroyed) client.end();
    return { result, replay: await readAll(server), ms };
  }

  it('exports the documented defaults', () => {
    assert.deepEqual(detectDefaults, { timeoutMs: 10_000, maxBytes: 8192 });
  });

  it('detects HTTP/1 and replays every byte', async () => {
    const input = bytes('GET / HTTP/1.1\r\nHost: web\r\n\r\n');
    const { result, replay } = await run((c) => void c.write(input));
    assert.deepEqual(result, { kind: 'http1' });
    assert.deepEqual(replay, input);
  });

  it('detects a real TLS ClientHello with its SNI and ALPN', async () => {
    const hello = await captureClientHello({ servername: 'web.default.svc', ALPNProtocols: ['h2', 'http/1.1'] });
    const { result, replay } = await run((c) => void c.write(hello));
    assert.deepEqual(result, { kind: 'tls', sni: 'web.default.svc', alpn: ['h2', 'http/1.1'] });
    assert.deepEqual(replay, hello);
  });

  it('detects a request line that arrives one byte per read', async () => {
    const input = bytes('OPTIONS /a/very/long/path?with=query HTTP/1.1\r\n');
    const { result, replay } = await run(async (c, s) => {
      for (let i = 0; i < input.length; i++) {
        c.write(input.subarray(i, i + 1));
        await received(s, i + 1);
      }
    });
    assert.deepEqual(result, { kind: 'http1' });
    assert.deepEqual(replay, input);
  });

  it('detects the h2 preface split across reads', async () => {
    const input = bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0');
    const { result, replay } = await run(async (c, s) => {
      c.write(input.subarray(0, 16)); // "PRI * HTTP/2.0\r\n": must not be taken for HTTP/1
      await received(s, 16);
      c.write(input.subarray(16));
    });
    assert.deepEqual(result, { kind: 'h2' });
    assert.deepEqual(replay, input);
  });

  it('lets a server-speaks-first client through as opaque after the timeout, its bytes intact', async () => {
    const { result, replay, ms } = await run((c) => void c.write('G'), { timeoutMs: 200, maxBytes: 8192 });
    assert.deepEqual(result, { kind: 'opaque', reason: 'timeout' });
    assert.ok(ms >= 190 && ms < 2_000, `${ms} ms`);
    assert.deepEqual(replay, bytes('G'));
  });

  it('holds a request line arriving a byte at a time to the HTTP timeout, then says HTTP/1 (its server answers 408)', async () => {
    const { result, replay, ms } = await run((c) => void c.write('GET /sl'), { timeoutMs: 5_000, maxBytes: 8192, httpTimeoutMs: 200 });
    assert.deepEqual(result, { kind: 'http1' });
    assert.ok(ms >= 190 && ms < 2_000, `${ms} ms`);
    assert.deepEqual(replay, bytes('GET /sl'));
  });

  it('expires request lines held together a few per event-loop turn, with I/O between them', async () => {
    const N = 48;
    const pairs: { client: Socket; server: Socket }[] = [];
    for (let i = 0; i < N; i++) pairs.push(await net.pair());
    for (const { client } of pairs) client.write('GET /sl');
    for (const { server } of pairs) await received(server, 7);
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const perTurn = new Map<number, number>();
    const o = { timeoutMs: 5_000, maxBytes: 8192, httpTimeoutMs: 100 };
    const results = pairs.map(({ server }) =>
      detect(server, o).then((d) => {
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
        return d;
      }),
    );
    // Every detection reads its buffered bytes and arms its HTTP deadline; then the loop is held
    // past them all, so every timer falls due in the same timers phase.
    await new Promise((r) => setImmediate(r));
    const until = performance.now() + 150;
    while (performance.now() < until);
    const verdicts = await Promise.all(results);
    ticking = false;
    assert.deepEqual(new Set(verdicts.map((d) => d.kind)), new Set(['http1']));
    assert.ok(Math.max(...perTurn.values()) <= 16, `verdicts per turn: ${JSON.stringify([...perTurn])}`);
    assert.ok(perTurn.size >= N / 16, `verdicts per turn: ${JSON.stringify([...perTurn])}`);
    for (const { client, server } of pairs.slice(0, 3)) {
      client.end();
      assert.deepEqual(await readAll(server), bytes('GET /sl'));
    }
    for (const { client, server } of pairs) {
      client.destroy();
      server.destroy();
    }
  });

  it('keeps the detect timeout for bytes that begin no request line', async () => {
    const { result, ms } = await run((c) => void c.write('\x00\x01'), { timeoutMs: 300, maxBytes: 8192, httpTimeoutMs: 100 });
    assert.equal(result.kind, 'opaque');
    assert.ok(ms < 2_000, `${ms} ms`);
  });

  it('times out a silent client too', async () => {
    const { result, replay } = await run(() => {}, { timeoutMs: 100, maxBytes: 8192 });
    assert.deepEqual(result, { kind: 'opaque', reason: 'timeout' });
    assert.equal(replay.length, 0);
  });

  it('answers eof to a half-close mid-request, and still replays the bytes', async () => {
    const { result, replay, ms } = await run(async (c, s) => {
      c.write('GET /partial');
      await received(s, 12);
      c.end();
    });
    assert.deepEqual(result, { kind: 'opaque', reason: 'eof' });
    assert.ok(ms < 1_000, `eof took ${ms} ms`);
    assert.deepEqual(replay, bytes('GET /partial'));
  });

  it('answers eof when the last bytes and the FIN arrive together', async () => {
    const { result, replay } = await run((c) => void c.end('GET /x HTTP/1.1')); // still undecided at the FIN
    assert.deepEqual(result, { kind: 'opaque', reason: 'eof' });
    assert.deepEqual(replay, bytes('GET /x HTTP/1.1'));
  });

  it('answers error to a reset mid-detection, without throwing', async () => {
    const { result } = await run(async (c, s) => {
      c.write('GET /');
      await received(s, 5);
      c.resetAndDestroy();
    });
    assert.deepEqual(result, { kind: 'opaque', reason: 'error' });
  });

  it('bounds need-more by maxBytes and still replays everything, beyond maxBytes too', async () => {
    const input = bytes(`GET /${'a'.repeat(20_000)}`);
    const { result, replay } = await run((c) => void c.write(input), { timeoutMs: 5_000, maxBytes: 64 });
    assert.deepEqual(result, { kind: 'opaque', reason: 'too-large' });
    assert.deepEqual(replay, input);
  });

  it('uses data that was buffered before detection started', async () => {
    const input = bytes('GET / HTTP/1.1\r\n');
    const { client, server } = await net.pair();
    client.write(input);
    await received(server, input.length);
    assert.deepEqual(await detect(server, opts), { kind: 'http1' });
    client.end();
    assert.deepEqual(await readAll(server), input);
  });

  it('answers at once for a socket that has already ended or been destroyed', async () => {
    const { client, server } = await net.pair();
    client.end();
    await readAll(server); // consumes the FIN: 'end' has been emitted
    assert.deepEqual(await detect(server, opts), { kind: 'opaque', reason: 'eof' });
    server.destroy();
    assert.deepEqual(await detect(server, opts), { kind: 'opaque', reason: 'error' });
  });

  it('keeps the bytes of a socket that got data and FIN before detection started', async () => {
    // The one case Node gives no end-of-stream signal for (see peek.ts): not eof but timeout.
    const { client, server } = await net.pair();
    client.end('GET /x');
    await received(server, 6);
    await new Promise((r) => setTimeout(r, 20));
    const result = await detect(server, { timeoutMs: 100, maxBytes: 8192 });
    assert.deepEqual(result, { kind: 'opaque', reason: 'timeout' });
    assert.deepEqual(await readAll(server), bytes('GET /x'));
  });

  it('hands over a socket that http.Server serves, replayed request included', async () => {
    const app = http.createServer((req, res) => res.end(`${req.method} ${req.url}`));
    const { client, server } = await net.pair();
    const reply = new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (d: Buffer) => (text += d));
      client.on('end', () => resolve(text));
    });
    client.write('GET /hello HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
    assert.deepEqual(await detect(server, opts), { kind: 'http1' });
    app.emit('connection', server);
    server.resume();
    assert.match(await reply, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nGET \/hello$/);
    app.close();
  });

  it('hands over a socket that an h2c server serves', async () => {
    const app = http2.createServer();
    app.on('stream', (stream, headers) => stream.respond({ ':status': 200, 'x-path': String(headers[':path']) }, { endStream: true }));
    app.on('connection', (s: Socket) => s.on('error', () => {}));
    const front = (await import('node:net')).createServer(async (socket) => {
      socket.on('error', () => {});
      if ((await detect(socket, opts)).kind === 'h2') app.emit('connection', socket);
      else socket.destroy();
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const session = http2.connect(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
    const req = session.request({ ':path': '/h2' });
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    assert.equal(headers['x-path'], '/h2');
    session.close();
    front.close();
    app.close();
  });
});
