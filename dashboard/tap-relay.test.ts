// The tap relay against a tab that stops reading: events are dropped and
// counted, not buffered, and a `dropped` marker says how many once the tab
// reads again; a tab that goes away closes its upstream stream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { JsonStreamHandlers } from '../shared/api-stream.js';
import { eventually } from '../lab/eventually.js';
import { relayTap } from './tap-relay.js';

describe('tap relay (Server-Sent Events)', () => {
  let server: Server;
  let upstream: { h: JsonStreamHandlers; closed: boolean; body: unknown } | undefined;
  const open = (_path: string, body: unknown, h: JsonStreamHandlers): { close(): void } => {
    const u = { h, closed: false, body };
    upstream = u;
    return { close: () => void (u.closed = true) };
  };

  before(async () => {
    server = createServer((req, res) => relayTap(req, res, { resource: 'deploy/b', namespace: 'default' }, { client: { open }, maxRps: 100 }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const tab = async (): Promise<{ socket: Socket; text: () => string }> => {
    upstream = undefined;
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8').on('data', (c: string) => (text += c));
    socket.write('GET /api/tap HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    await eventually(() => assert.ok(upstream, 'the upstream stream is open'));
    return { socket, text: () => text };
  };

  it('asks the tap service with the relay\'s maxRps, and relays events as data lines', async () => {
    const t = await tab();
    assert.deepEqual(upstream!.body, { resource: 'deploy/b', namespace: 'default', maxRps: 100 });
    upstream!.h.onMessage({ kind: 'rsp', id: '1:0', status: 200, latencyUs: 5 });
    await eventually(() => assert.match(t.text(), /^content-type: text\/event-stream[\s\S]*retry: \d+\n\n[\s\S]*data: \{"kind":"rsp","id":"1:0","status":200,"latencyUs":5\}\n\n/m));
    t.socket.destroy();
    await eventually(() => assert.equal(upstream!.closed, true, 'the tab went away: the upstream stream is closed'));
  });

  it('drops what a tab that does not read cannot take, and says how much once it reads', async () => {
    const t = await tab();
    t.socket.pause();
    const big = 'x'.repeat(16 * 1024);
    const sent = 4000; // 64 MB if it were all kept
    for (let i = 0; i < sent; i++) upstream!.h.onMessage({ kind: 'req', id: `1:${i}`, path: big });
    t.socket.resume();
    const counted = (): { events: number; dropped: number } => {
      const data = [...t.text().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { kind: string; count?: number });
      return { events: data.filter((d) => d.kind === 'req').length, dropped: data.filter((d) => d.kind === 'dropped').reduce((n, d) => n + d.count!, 0) };
    };
    await eventually(() => {
      const c = counted();
      assert.ok(c.dropped > 0, 'some were dropped');
      assert.equal(c.events + c.dropped, sent, 'every event is either delivered or counted');
    });
    assert.ok(counted().events < sent / 4, `most were dropped, not buffered (${counted().events} delivered)`);
    t.socket.destroy();
  });

  it('a refusal from the tap service ends the stream with its code', async () => {
    const t = await tab();
    const { ApiClientError } = await import('../shared/api.js');
    upstream!.h.onEnd(new ApiClientError('MESH_API_REFUSED', 'https://x/tap.mesh.io/v1/tap refused (404 MESH_TAP_NO_PODS): deploy/b in default has no meshed pods', 404, 'MESH_TAP_NO_PODS'));
    await eventually(() => assert.match(t.text(), /event: end\ndata: \{"code":"MESH_TAP_NO_PODS","message":"deploy\/b in default has no meshed pods"\}/));
    await eventually(() => assert.ok(t.socket.readableEnded || t.text().endsWith('0\r\n\r\n'), 'the response ended'));
    t.socket.destroy();
  });
});
