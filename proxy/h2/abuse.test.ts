// Raw-frame clients against our server role: floods end that connection only
// with GOAWAY(ENHANCE_YOUR_CALM); malformed frames end it with the right code.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, test } from 'node:test';
import * as F from './frames.js';
import { HpackEncoder } from './hpack/index.js';
import type { ServerStream } from '../message/types.js';
import { Echo, eventually, ourServer, type OurServer } from './testkit.js';

const servers: OurServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

/** A client speaking raw frames; collects the GOAWAY it gets. */
class Raw {
  readonly sock: net.Socket;
  readonly enc = new HpackEncoder();
  goaway = -1;
  rsts = 0;
  headers = 0;
  closed = false;
  readonly #reader = new F.FrameReader({
    onFrame: (type, _flags, _id, p) => {
      if (type === F.GOAWAY) this.goaway = p.readUInt32BE(4);
      if (type === F.RST_STREAM) this.rsts++;
      if (type === F.HEADERS) this.headers++;
    },
  });
  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (d) => this.#reader.push(d));
    this.sock.on('error', () => {});
    this.sock.on('close', () => (this.closed = true));
    this.sock.write(Buffer.concat([F.PREFACE, F.frame(F.SETTINGS, 0, 0)]));
  }
  request(id: number, end = true): Buffer {
    const block = this.enc.encode([':method', 'GET', ':scheme', 'http', ':authority', 'x', ':path', '/']);
    return F.frame(F.HEADERS, F.FLAG_END_HEADERS | (end ? F.FLAG_END_STREAM : 0), id, block);
  }
  send(...frames: Buffer[]): void {
    this.sock.write(Buffer.concat(frames));
  }
}

async function server(onAbuse: string[], opts = {}): Promise<OurServer> {
  // A handler that never answers: every reset cancels work in progress.
  const srv = await ourServer({ onRequest: (s) => s.listen({ onData: () => true, onEnd: () => {}, onReset: () => {}, onWritable: () => {} }) }, { onAbuse: (c: string, d: string) => onAbuse.push(`${c} ${d}`), ...opts });
  servers.push(srv);
  return srv;
}

test('abuse: rapid reset ends that connection with ENHANCE_YOUR_CALM; another keeps working', async () => {
  const seen: string[] = [];
  const srv = await server(seen);
  const bad = new Raw(srv.port);
  const good = new Raw(srv.port);
  const frames: Buffer[] = [];
  for (let id = 1; id < 2000; id += 2) frames.push(bad.request(id), F.frame(F.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  bad.send(...frames);
  await eventually(() => bad.goaway >= 0 && bad.closed);
  assert.equal(bad.goaway, 0xb);
  assert.match(seen[0]!, /MESH_H2_ABUSE rapid reset/);
  // The other connection is untouched: requests on it still reach the handler.
  good.send(good.request(1, false));
  await eventually(() => srv.conns[1]!.streams.size === 1);
  assert.equal(srv.conns[1]!.dead, false);
  good.sock.destroy();
});

test('abuse: a mesh peer relaying many cancellations stays within its budget', async () => {
  const seen: string[] = [];
  const srv = await server(seen, { peer: 'mesh' });
  const peer = new Raw(srv.port);
  const frames: Buffer[] = [];
  for (let id = 1; id < 4000; id += 2) frames.push(peer.request(id), F.frame(F.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  peer.send(...frames);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(peer.goaway, -1);
  assert.deepEqual(seen, []);
  peer.sock.destroy();
});

test('abuse: PING, SETTINGS, empty DATA and CONTINUATION floods are cut', async () => {
  const floods: [string, (r: Raw) => Buffer[]][] = [
    ['PING', () => Array.from({ length: 3000 }, () => F.frame(F.PING, 0, 0, Buffer.alloc(8)))],
    ['SETTINGS', () => Array.from({ length: 3000 }, () => F.frame(F.SETTINGS, 0, 0))],
    ['empty DATA', (r) => [r.request(1, false), ...Array.from({ length: 3000 }, () => F.frame(F.DATA, 0, 1))]],
    ['empty CONTINUATION', (r) => {
      const h = r.request(1);
      h[4] = F.FLAG_END_STREAM; // no END_HEADERS: CONTINUATION frames follow
      return [h, ...Array.from({ length: 3000 }, () => F.frame(F.CONTINUATION, 0, 1))];
    }],
    ['endless header block', (r) => {
      const h = r.request(1);
      h[4] = 0;
      return [h, ...Array.from({ length: 20 }, () => F.frame(F.CONTINUATION, 0, 1, Buffer.alloc(16384, 0x41)))];
    }],
  ];
  for (const [what, build] of floods) {
    const seen: string[] = [];
    const srv = await server(seen);
    const r = new Raw(srv.port);
    r.send(...build(r));
    await eventually(() => r.closed);
    assert.equal(r.goaway, 0xb, what);
    assert.equal(seen.length, 1, what);
  }
});

test('abuse: WINDOW_UPDATEs for streams already closed are legal (Go returns window as its app reads): thousands pass, a flood is still cut', async () => {
  for (const [updates, cut] of [[15, false], [150, true]] as const) {
    const seen: string[] = [];
    // Answers every request at once, whole: the stream is closed before the client's updates come.
    const srv = await ourServer({ onRequest: (st) => { st.listen({ onData: () => true, onEnd: () => {}, onReset: () => {}, onWritable: () => {} }); st.respond({ status: 200, reason: '', version: 20, headers: [] }, true); } }, { onAbuse: (c: string, d: string) => seen.push(`${c} ${d}`) });
    servers.push(srv);
    const r = new Raw(srv.port);
    // 200 requests, each followed by `updates` stream WINDOW_UPDATEs: 3,000 in all (a Go client reading
    // 200 responses of 60 kB in 4 KiB steps), then 30,000 (no client does that).
    for (let id = 1; id < 400; id += 2) {
      r.send(r.request(id), ...Array.from({ length: updates }, () => F.frame(F.WINDOW_UPDATE, 0, id, Buffer.from([0, 0, 0x10, 0]))));
    }
    if (cut) {
      await eventually(() => r.closed);
      assert.equal(r.goaway, 0xb);
      assert.match(seen[0]!, /WINDOW_UPDATE flood/);
    } else {
      await eventually(() => r.headers === 200);
      assert.equal(r.goaway, -1);
      assert.deepEqual(seen, []);
      assert.equal(srv.conns[0]!.dead, false);
    }
    r.sock.destroy();
  }
});

// Not abuse, but frame by frame is how to get it: DATA queued behind a paused listener when END_STREAM comes.
test('a complete response while the ended request body waits paused closes the stream (it held a concurrency slot for good)', async () => {
  let stream: ServerStream | undefined;
  // Takes nothing: the body waits, as it does behind an upstream still being dialled.
  const srv = await ourServer({ onRequest: (st) => { stream = st; st.listen({ onData: () => false, onEnd: () => {}, onReset: () => {}, onWritable: () => {} }); } });
  servers.push(srv);
  const r = new Raw(srv.port);
  const head = r.request(1, false);
  r.send(head, F.frame(F.DATA, 0, 1, Buffer.alloc(1000)), F.frame(F.DATA, 0, 1, Buffer.alloc(1000)), F.frame(F.DATA, F.FLAG_END_STREAM, 1));
  await eventually(() => srv.conns[0]?.streams.get(1)?.remoteEnded === true);
  // The upstream failed: the handler answers, whole, and never resumes the body.
  stream!.respond({ status: 502, reason: '', version: 20, headers: [] }, false);
  stream!.write(Buffer.from('bad'));
  stream!.end();
  await eventually(() => r.headers === 1);
  await eventually(() => srv.conns[0]!.streams.size === 0);
  r.sock.destroy();
});

test('abuse: malformed frames end the connection with the RFC code', async () => {
  const cases: [string, (r: Raw) => Buffer[], number][] = [
    ['oversized frame', () => [F.frame(F.DATA, 0, 1, Buffer.alloc(20000))], 0x6],
    ['PING of 7 bytes', () => [F.frame(F.PING, 0, 0, Buffer.alloc(7))], 0x6],
    ['DATA on stream 0', () => [F.frame(F.DATA, 0, 0, Buffer.alloc(1))], 0x1],
    ['DATA on an idle stream', () => [F.frame(F.DATA, 0, 5, Buffer.alloc(1))], 0x1],
    ['even stream id', (r) => [r.request(2)], 0x1],
    ['PUSH_PROMISE', () => [F.frame(F.PUSH_PROMISE, F.FLAG_END_HEADERS, 1, Buffer.alloc(4))], 0x1],
    ['HEADERS interrupted', (r) => { const h = r.request(1); h[4] = 0; return [h, F.frame(F.PING, 0, 0, Buffer.alloc(8))]; }, 0x1],
    ['bad HPACK', () => [F.frame(F.HEADERS, F.FLAG_END_HEADERS, 1, Buffer.from([0x80]))], 0x9],
    ['window overflow', () => [F.frame(F.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff]))], 0x3],
  ];
  const srv = await server([], { streamWindow: 65535, connectionWindow: 65535 });
  for (const [what, build, code] of cases) {
    const r = new Raw(srv.port);
    r.send(...build(r));
    await eventually(() => r.closed).catch(() => assert.fail(`${what}: not closed, goaway ${r.goaway}`));
    assert.equal(r.goaway, code, what);
  }
});

test('abuse: a client ignoring our windows is cut with FLOW_CONTROL_ERROR', async () => {
  // The handler takes nothing: no byte is credited, so the 5th frame overflows both windows.
  const srv = await ourServer(
    { onRequest: (s) => s.listen({ onData: () => false, onEnd: () => {}, onReset: () => {}, onWritable: () => {} }) },
    { connectionWindow: 65535, limits: { holdBudget: 0 } },
  );
  servers.push(srv);
  const r = new Raw(srv.port);
  r.send(r.request(1, false), ...Array.from({ length: 5 }, () => F.frame(F.DATA, 0, 1, Buffer.alloc(16384))));
  await eventually(() => r.closed);
  assert.equal(r.goaway, 0x3);
});

test('abuse: node:http2 still works against a server that cut abusers', async () => {
  const srv = await ourServer(new Echo());
  servers.push(srv);
  const c = http2.connect(`http://127.0.0.1:${srv.port}`);
  const req = c.request({ ':path': '/' });
  req.resume();
  const status = await new Promise((r) => req.on('response', (h) => r(h[':status'])));
  assert.equal(status, 200);
  c.destroy();
});
