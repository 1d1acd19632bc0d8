import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TapEvent } from '../../contract/tap.js';
import type { ConnContext } from '../context.js';
import { ProxyError } from '../errors.js';
import type { ExchangeView } from '../forward/forwarder.js';
import type { RequestHead } from '../message/types.js';
import { TapHub } from './hub.js';
import { parseWatch } from './server.js';

function ctx(direction: 'inbound' | 'outbound', labels: Record<string, string> = { tls: 'true', server_id: 'api.default.serviceaccount.identity.cluster.local' }): ConnContext {
  return { direction, target: { address: '10.0.0.7', port: 8080, family: 4 }, targetAddr: '10.0.0.7:8080', src: '10.0.0.5:50312', metrics: { labels } } as unknown as ConnContext;
}

class View implements ExchangeView {
  status = 0;
  startedAt = performance.now();
  respondedAt = 0;
  responseBytes = 0;
  grpcStatus: string | undefined;
  error: ProxyError | undefined;
  constructor(readonly request: RequestHead, readonly ctx: ConnContext) {}
}

const h1 = (method: string, target: string, host = 'web:8080'): RequestHead => ({ method, target, scheme: undefined, authority: undefined, version: 11, headers: ['Host', host, 'Accept', '*/*'] });

class Sink {
  lines: string[] = [];
  full = false;
  write(line: string): boolean {
    this.lines.push(line);
    return !this.full;
  }
  events(): TapEvent[] {
    return this.lines.map((l) => JSON.parse(l) as TapEvent);
  }
}

/** One exchange through the hub: request, response head, a body, end. */
function exchange(hub: TapHub, v: View, status = 200, bytes = 1234, grpc?: string): void {
  hub.onRequest(v);
  v.status = status;
  v.respondedAt = performance.now();
  hub.onResponse(v);
  v.responseBytes = bytes;
  v.grpcStatus = grpc;
  hub.onEnd(v);
}

test('tap: nobody watching keeps no state', () => {
  const hub = new TapHub('r');
  const v = new View(h1('GET', '/'), ctx('outbound'));
  hub.onRequest(v);
  assert.equal(hub.tappedInFlight, 0);
  hub.onEnd(v);
});

test('tap: req, rsp and end carry what the anchors show, in order, with one id', () => {
  const hub = new TapHub('run1');
  const s = new Sink();
  hub.watch({}, undefined, s);
  exchange(hub, new View(h1('GET', '/books?x=1'), ctx('outbound')), 200, 1234, '0');
  const [req, rsp, end] = s.events();
  assert.deepEqual({ ...req, at: 0 }, {
    kind: 'req', id: 'run1:0', proxy: 'out', src: '10.0.0.5:50312', dst: '10.0.0.7:8080', tls: 'true',
    serverId: 'api.default.serviceaccount.identity.cluster.local', method: 'GET', scheme: 'http', authority: 'web:8080', path: '/books?x=1', at: 0,
  });
  assert.equal(rsp!.kind, 'rsp');
  assert.equal((rsp as { status: number }).status, 200);
  assert.equal(end!.kind, 'end');
  assert.deepEqual({ ...end, durationUs: 0 }, { kind: 'end', id: 'run1:0', durationUs: 0, responseBytes: 1234, grpcStatus: '0' });
  assert.equal(hub.tappedInFlight, 0);
});

test('tap: a response the proxy made (502, no onResponse) still gets rsp before end, with the error code', () => {
  const hub = new TapHub('r');
  const s = new Sink();
  hub.watch({}, undefined, s);
  const v = new View(h1('POST', '/x'), ctx('inbound', { tls: 'true', client_id: 'web.default.serviceaccount.identity.cluster.local' }));
  hub.onRequest(v);
  v.status = 502;
  v.error = new ProxyError('MESH_UPSTREAM_RESET', 'refused');
  hub.onEnd(v);
  const e = s.events();
  assert.deepEqual(e.map((x) => x.kind), ['req', 'rsp', 'end']);
  assert.equal((e[0] as { clientId: string }).clientId, 'web.default.serviceaccount.identity.cluster.local');
  assert.equal((e[0] as { proxy: string }).proxy, 'in');
  assert.equal((e[1] as { status: number }).status, 502);
  assert.equal((e[2] as { error: string }).error, 'MESH_UPSTREAM_RESET');
});

test('tap: every filter narrows: direction, method, path prefix, authority, peer', () => {
  const hub = new TapHub('r');
  const sinks = {
    all: new Sink(), inbound: new Sink(), post: new Sink(), books: new Sink(), authority: new Sink(), peer: new Sink(), peerHost: new Sink(), otherPeer: new Sink(),
  };
  hub.watch({}, 1000, sinks.all);
  hub.watch({ direction: 'inbound' }, 1000, sinks.inbound);
  hub.watch({ method: 'post' }, 1000, sinks.post);
  hub.watch({ pathPrefix: '/books' }, 1000, sinks.books);
  hub.watch({ authority: 'API:9090' }, 1000, sinks.authority);
  hub.watch({ peer: '10.0.0.7:8080' }, 1000, sinks.peer);
  hub.watch({ peer: '10.0.0.7' }, 1000, sinks.peerHost);
  hub.watch({ peer: '10.0.0.9' }, 1000, sinks.otherPeer);
  exchange(hub, new View(h1('GET', '/books/1'), ctx('outbound')));
  exchange(hub, new View(h1('POST', 'http://api:9090/orders', 'api:9090'), ctx('outbound')));
  exchange(hub, new View({ method: 'GET', target: '/x', scheme: 'http', authority: 'api:9090', version: 20, headers: [] }, ctx('inbound')));
  const paths = (s: Sink): string[] => s.events().filter((e) => e.kind === 'req').map((e) => (e as { path: string }).path);
  assert.deepEqual(paths(sinks.all), ['/books/1', '/orders', '/x']);
  assert.deepEqual(paths(sinks.inbound), ['/x']);
  assert.deepEqual(paths(sinks.post), ['/orders']);
  assert.deepEqual(paths(sinks.books), ['/books/1']);
  assert.deepEqual(paths(sinks.authority), ['/orders', '/x']);
  assert.deepEqual(paths(sinks.peer), ['/books/1', '/orders']); // inbound's peer is the client 10.0.0.5
  assert.deepEqual(paths(sinks.peerHost), ['/books/1', '/orders']);
  assert.deepEqual(paths(sinks.otherPeer), []);
  // Only the watchers that took a request get its rsp and end.
  assert.equal(sinks.post.events().length, 3);
});

test('tap: maxRps samples requests; the next event after is preceded by the count dropped', () => {
  const hub = new TapHub('r');
  const s = new Sink();
  hub.watch({}, 5, s);
  for (let i = 0; i < 50; i++) exchange(hub, new View(h1('GET', `/${i}`), ctx('outbound')));
  const reqs = s.events().filter((e) => e.kind === 'req');
  // A one-second bucket of 5, refilled at 5/s: the loop takes well under a second.
  assert.ok(reqs.length >= 5 && reqs.length <= 6, `${reqs.length} requests shown`);
  assert.equal(hub.tappedInFlight, 0);
});

test('tap: a full sink drops events (counted) and never buffers them; after drained() a dropped marker comes first', () => {
  const hub = new TapHub('r');
  const s = new Sink();
  const w = hub.watch({}, 10_000, s);
  exchange(hub, new View(h1('GET', '/a'), ctx('outbound')));
  s.full = true;
  exchange(hub, new View(h1('GET', '/b'), ctx('outbound'))); // req written (the write that said full), rsp and end dropped
  for (let i = 0; i < 10; i++) exchange(hub, new View(h1('GET', '/c'), ctx('outbound'))); // not admitted: 10 dropped
  const before = s.lines.length;
  assert.equal(before, 4);
  s.full = false;
  w.drained();
  exchange(hub, new View(h1('GET', '/d'), ctx('outbound')));
  const after = s.events().slice(before);
  assert.deepEqual(after[0], { kind: 'dropped', count: 12 });
  assert.deepEqual(after.slice(1).map((e) => e.kind), ['req', 'rsp', 'end']);
  assert.equal(hub.tappedInFlight, 0);
});

test('tap: an exchange in flight when its watcher leaves ends quietly, and the hub forgets it', () => {
  const hub = new TapHub('r');
  const s = new Sink();
  const w = hub.watch({}, undefined, s);
  const v = new View(h1('GET', '/slow'), ctx('outbound'));
  hub.onRequest(v);
  hub.unwatch(w);
  v.status = 200;
  hub.onResponse(v);
  hub.onEnd(v);
  assert.equal(s.lines.length, 1);
  assert.equal(hub.tappedInFlight, 0);
  assert.equal(hub.watchers.length, 0);
});

test('tap: watch requests are checked field by field', () => {
  assert.deepEqual(parseWatch({ filter: { method: 'GET', pathPrefix: '/a', direction: 'inbound' }, maxRps: 10 }), { filter: { method: 'GET', pathPrefix: '/a', direction: 'inbound' }, maxRps: 10 });
  assert.deepEqual(parseWatch({}), {});
  for (const [bad, why] of [
    [[], /object/],
    [{ maxRps: -1 }, /maxRps/],
    [{ filter: { direction: 'sideways' } }, /direction/],
    [{ filter: { method: '' } }, /method/],
    [{ filter: { colour: 'red' } }, /unknown filter field "colour"/],
  ] as const) {
    const r = parseWatch(bad);
    assert.ok('code' in r && r.code === 'MESH_TAP_MALFORMED' && why.test(r.message), JSON.stringify(r));
  }
});
