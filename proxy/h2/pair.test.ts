// Our client role against our server role, as between two proxies.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import type { ServerStream } from '../message/types.js';
import type { H2ClientConnection } from './client.js';
import { Echo, eventually, get, ourClient, ourServer, Recorder, sha, type OurServer } from './testkit.js';

const servers: OurServer[] = [];
const clients: H2ClientConnection[] = [];
after(async () => {
  for (const c of clients) c.destroy();
  for (const s of servers) await s.close();
});

async function pair(handler = new Echo(), peer: 'app' | 'mesh' = 'mesh'): Promise<{ c: H2ClientConnection; srv: OurServer; echo: Echo }> {
  const srv = await ourServer(handler, { peer });
  servers.push(srv);
  const c = await ourClient(srv.port, { peer });
  clients.push(c);
  return { c, srv, echo: handler };
}

test('pair: 200 multiplexed requests with bodies up to 4 MB, trailers both ways', async () => {
  const { c } = await pair();
  const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(i % 50 === 0 ? 4 << 20 : i * 37));
  const rs = bodies.map((b, i) => {
    const r = new Recorder();
    const s = c.request(get(`/${i}`, ['x-trailers', 'yes'], 'POST'), false, r);
    s.write(b);
    s.end(['x-req', String(i)]);
    return r;
  });
  await Promise.all(rs.map((r) => r.done));
  rs.forEach((r, i) => {
    assert.equal(r.reset, undefined);
    assert.equal(sha(r.body()), sha(bodies[i]!));
    assert.deepEqual(r.trailers, ['x-sum', 'ok', 'x-req', String(i)]);
  });
  await eventually(() => c.streams.size === 0);
});

test('pair: trailers-only, 100-continue and bodyless requests', async () => {
  const { c, echo } = await pair();
  const t = new Recorder();
  c.request(get('/g', ['x-status', '200']), true, t);
  await t.done;
  assert.deepEqual(t.head!.headers, ['grpc-status', '13']);
  assert.equal(t.trailers, undefined);
  const e = new Recorder();
  const s = c.request(get('/e', ['expect', '100-continue'], 'POST'), false, e);
  await eventually(() => e.continued);
  assert.equal(echo.seen.at(-1)!.expectsContinue, false);
  s.end();
  await e.done;
  assert.equal(e.head!.status, 200);
});

test('pair: resets cross with their code; a cancelled stream does not disturb the others', async () => {
  const held: ServerStream[] = [];
  const codes: number[] = [];
  const { c } = await pair({
    onRequest(s: ServerStream) {
      held.push(s);
      s.listen({ onData: () => true, onEnd: () => {}, onReset: (r) => codes.push(r.h2Code), onWritable: () => {} });
    },
  } as never);
  const a = new Recorder();
  const b = new Recorder();
  const sa = c.request(get('/a'), false, a);
  c.request(get('/b'), true, b);
  await eventually(() => held.length === 2);
  sa.reset({ h2Code: 0x8, error: undefined as never });
  await eventually(() => codes.length === 1);
  assert.equal(codes[0], 0x8);
  held[1]!.reset({ h2Code: 0x2, error: undefined as never });
  await b.done;
  assert.equal(b.reset!.h2Code, 0x2);
  assert.equal(b.reset!.error.code, 'MESH_UPSTREAM_RESET');
  const ok = new Recorder();
  c.request(get('/ok'), true, ok);
  await eventually(() => held.length === 3);
  held[2]!.respond({ status: 200, reason: '', version: 20, headers: [] }, true);
  await ok.done;
  assert.equal(ok.head!.status, 200);
});

test('pair: a slow reader behind the pair back-pressures; memory stays bounded', async () => {
  const body = randomBytes(16 << 20);
  const { c, srv } = await pair({
    onRequest(s: ServerStream) {
      s.listen({ onData: () => true, onEnd: () => {}, onReset: () => {}, onWritable: () => pump() });
      s.respond({ status: 200, reason: '', version: 20, headers: [] }, false);
      let off = 0;
      const pump = (): void => {
        while (off < body.length) {
          const n = Math.min(65536, body.length - off);
          const more = s.write(body.subarray(off, off + n));
          off += n;
          if (!more) return;
        }
        s.end();
      };
      pump();
    },
  } as never, 'app');
  const r = new Recorder();
  r.stall = true;
  const s = c.request(get('/big'), true, r);
  await new Promise((res) => setTimeout(res, 200));
  const out = srv.conns[0]!.streams.get(1)!;
  assert.ok(out.outBytes <= 64 * 1024 + 65536, `server queued ${out.outBytes}`);
  assert.ok(r.bytes <= 65535 + 16384, `delivered ${r.bytes}`);
  r.stall = false;
  s.resume();
  await r.done;
  assert.equal(sha(r.body()), sha(body));
});

test('pair: close() drains in-flight streams, then both sides go', async () => {
  const held: ServerStream[] = [];
  const { c, srv } = await pair({
    onRequest(s: ServerStream) {
      held.push(s);
      s.listen({ onData: () => true, onEnd: () => {}, onReset: () => {}, onWritable: () => {} });
    },
  } as never);
  const r = new Recorder();
  c.request(get('/x'), true, r);
  await eventually(() => held.length === 1);
  srv.conns[0]!.close();
  await eventually(() => !c.isAvailable());
  const late = new Recorder();
  c.request(get('/late'), true, late);
  await late.done;
  assert.equal(late.reset!.error.code, 'MESH_H2_REFUSED');
  held[0]!.respond({ status: 200, reason: '', version: 20, headers: [] }, false);
  held[0]!.end();
  await r.done;
  assert.equal(r.head!.status, 200);
  await eventually(() => c.dead && srv.conns[0]!.dead);
});
