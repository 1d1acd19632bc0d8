// The discovery cache against a fake stream client: answers, notFound, the
// bounded first wait, reconnection keeping the last state, the up/down
// transitions said once, idle authorities dropped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DESTINATION_GET_PATH, type Endpoint as WireEndpoint } from '../../contract/destination.js';
import { Endpoint } from '../balance/endpoint.js';
import type { Connector } from '../connect/upstreams.js';
import { Log } from '../log.js';
import { Discovery, type StreamOpener } from './cache.js';

interface FakeStream {
  path: string;
  body: { authority: string; contextNamespace?: string };
  h: { onMessage(msg: unknown): void; onEnd(error: { code?: string; message: string } | undefined): void };
  closed: boolean;
}

class FakeStreams implements StreamOpener {
  readonly opened: FakeStream[] = [];
  open(path: string, body: unknown, h: FakeStream['h']) {
    const s: FakeStream = { path, body: body as FakeStream['body'], h, closed: false };
    this.opened.push(s);
    return {
      close: () => {
        s.closed = true;
        h.onEnd(undefined);
      },
    };
  }
  close(): void {}
  last(authority: string): FakeStream {
    const s = [...this.opened].reverse().find((x) => x.body.authority === authority);
    assert.ok(s, `a stream for ${authority}`);
    return s;
  }
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
};

function setup(o: { waitMs?: number; idleMs?: number } = {}) {
  const lines: string[] = [];
  const log = new Log('info', (l) => lines.push(l));
  const streams = new FakeStreams();
  const made: WireEndpoint[] = [];
  const d = new Discovery({
    streams,
    log,
    contextNamespace: 'default',
    waitMs: o.waitMs ?? 1000,
    idleMs: o.idleMs ?? 60_000,
    reconnectMinMs: 5,
    reconnectMaxMs: 20,
    endpoint: (e) => {
      made.push(e);
      return new Endpoint({ address: e.address, port: e.port, family: 4 }, `${e.address}:${e.port}`, e.identity, {} as Connector, undefined, 0);
    },
  });
  return { d, streams, lines, made };
}

const snapshot = (authority: string, addrs: string[], settings: object = { opaque: false }) => ({
  kind: 'snapshot',
  authority,
  settings,
  endpoints: addrs.map((a) => ({ address: a, port: 8080, identity: `${a}.id` })),
});

describe('discovery cache', () => {
  it('opens one stream per authority, asks with the context namespace, and applies snapshots', () => {
    const { d, streams } = setup();
    const s = d.service('web:8080');
    assert.equal(d.service('web:8080'), s, 'cached');
    assert.equal(streams.opened.length, 1);
    assert.equal(streams.opened[0]!.path, DESTINATION_GET_PATH);
    assert.deepEqual(streams.opened[0]!.body, { authority: 'web:8080', contextNamespace: 'default' });
    assert.equal(s.settled, false);
    let woke = 0;
    s.wait({ resolved: () => woke++ });
    streams.last('web:8080').h.onMessage(snapshot('web:8080', ['10.0.0.1', '10.0.0.2'], { opaque: false, retryHttp: '5xx', timeoutMs: 500 }));
    assert.equal(woke, 1, 'the waiting request goes on');
    assert.equal(s.usable, true);
    assert.equal(s.balancer.endpoints.length, 2);
    assert.equal(s.policy.timeoutMs, 500);
    assert.equal(s.policy.retriesStatus(503), true);
    const first = s.balancer.endpoints[0];
    streams.last('web:8080').h.onMessage(snapshot('web:8080', ['10.0.0.1', '10.0.0.3']));
    assert.equal(s.balancer.endpoints[0], first, 'an endpoint that stays keeps its object (and its history)');
    assert.deepEqual(s.balancer.endpoints.map((e) => e.key), ['10.0.0.1:8080', '10.0.0.3:8080']);
    assert.equal(s.policy.retryLimit, 0, 'settings follow the snapshot');
    d.close();
  });

  it('notFound: the service settles with nothing to balance over; malformed updates are ignored', () => {
    const { d, streams, lines } = setup();
    const s = d.service('example.com:80');
    streams.last('example.com:80').h.onMessage({ kind: 'bogus' });
    assert.equal(s.settled, false);
    assert.match(lines.join('\n'), /malformed/);
    streams.last('example.com:80').h.onMessage({ kind: 'notFound', authority: 'example.com:80', reason: 'no such service' });
    assert.equal(s.settled, true);
    assert.equal(s.usable, false);
    d.close();
  });

  it('gives up waiting after waitMs: waiters go on, the stream stays and a late answer still applies', async () => {
    const { d, streams } = setup({ waitMs: 20 });
    const s = d.service('slow:80');
    let woke = 0;
    s.wait({ resolved: () => woke++ });
    await until(() => woke === 1);
    assert.equal(s.fallback, true);
    streams.last('slow:80').h.onMessage(snapshot('slow:80', ['10.0.0.9']));
    assert.equal(s.usable, true);
    d.close();
  });

  it('a lost stream is reopened and the last answer kept meanwhile; down and up are each said once', async () => {
    const { d, streams, lines } = setup();
    const a = d.service('a:80');
    const b = d.service('b:80');
    streams.last('a:80').h.onMessage(snapshot('a:80', ['10.0.0.1']));
    streams.last('b:80').h.onMessage(snapshot('b:80', ['10.0.0.2']));
    assert.equal(d.up, true);
    const opened = streams.opened.length;
    streams.last('a:80').h.onEnd({ code: 'MESH_API_UNREACHABLE', message: 'connection refused' });
    streams.last('b:80').h.onEnd({ code: 'MESH_API_UNREACHABLE', message: 'connection refused' });
    assert.equal(d.up, false);
    assert.equal(a.usable, true, 'serving from the cache');
    assert.equal(lines.filter((l) => /unreachable/.test(l)).length, 1, lines.join('\n'));
    await until(() => streams.opened.length >= opened + 2);
    // Still down: the reopened streams fail again; nothing more is logged.
    streams.last('a:80').h.onEnd({ code: 'MESH_API_UNREACHABLE', message: 'connection refused' });
    await until(() => streams.opened.length >= opened + 3);
    assert.equal(lines.filter((l) => /unreachable/.test(l)).length, 1);
    streams.last('a:80').h.onMessage(snapshot('a:80', ['10.0.0.5']));
    assert.equal(d.up, true);
    assert.deepEqual(a.balancer.endpoints.map((e) => e.key), ['10.0.0.5:8080'], 'updates flow again');
    assert.equal(lines.filter((l) => /reachable again/.test(l)).length, 1);
    assert.equal(b.usable, true);
    d.close();
  });

  it('drops an authority nobody used for idleMs, closing its stream', async () => {
    const { d, streams } = setup({ idleMs: 40 });
    const s = d.service('idle:80');
    streams.last('idle:80').h.onMessage(snapshot('idle:80', ['10.0.0.1']));
    await until(() => s.dropped);
    assert.equal(streams.last('idle:80').closed, true);
    assert.notEqual(d.service('idle:80'), s, 'asked again: a new stream');
    d.close();
  });
});
