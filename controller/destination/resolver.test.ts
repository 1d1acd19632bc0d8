// The resolver against fake sources: order decides, notFound names every
// source's reason, changes arrive once and only when the answer changed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Update } from '../../contract/destination.js';
import { eventually } from '../../lab/eventually.js';
import { parseAuthority } from './authority.js';
import type { Resolution } from './catalog.js';
import { ChangeNotifier, type Source } from './source.js';

import { createResolver } from './resolver.js';

function fake(name: string, known: Record<string, string[]>, ready = true): Source & { set(host: string, addrs: string[] | undefined): void; becomeReady(): void } {
  const changes = new ChangeNotifier();
  let isReady = ready;
  return {
    name,
    resolve: (a): Resolution => {
      const addrs = known[a.host];
      return addrs === undefined ? { kind: 'unknown', reason: `${a.host}?` } : { kind: 'found', settings: { opaque: false }, endpoints: addrs.map((address) => ({ address, port: a.port })) };
    },
    onChange: (l) => changes.on(l),
    ready: () => isReady,
    close: async () => {},
    set(host, addrs) {
      if (addrs === undefined) delete known[host];
      else known[host] = addrs;
      changes.emit();
    },
    becomeReady() {
      isReady = true;
      changes.emit();
    },
  };
}

const addrs = (u: Update | undefined) => (u?.kind === 'snapshot' ? u.endpoints.map((e) => e.address) : u?.kind);

describe('resolver', () => {
  it('the first source that knows an authority answers; none knowing it is notFound with every reason', () => {
    const k8s = fake('kubernetes', { 'web.demo': ['10.0.0.1'] });
    const file = fake('file:/x', { 'web.demo': ['192.168.0.1'], 'vm.local': ['192.168.0.2'] });
    const r = createResolver([k8s, file]);
    assert.deepEqual(addrs(r.resolve(parseAuthority('web.demo:80'))), ['10.0.0.1']);
    assert.deepEqual(addrs(r.resolve(parseAuthority('vm.local:80'))), ['192.168.0.2']);
    assert.deepEqual(r.resolve(parseAuthority('x.local:80')), { kind: 'notFound', authority: 'x.local:80', reason: 'kubernetes: x.local?; file:/x: x.local?' });
    r.close();
  });

  it('sends each change once, coalesced, and nothing when the answer is unchanged; falls through when a source forgets', async () => {
    const a = fake('a', { 'web.demo': ['10.0.0.1'] });
    const b = fake('b', { 'web.demo': ['192.168.0.1'] });
    const r = createResolver([a, b]);
    const seen: Update[] = [];
    const stop = r.subscribe(parseAuthority('web.demo:80'), (u) => void seen.push(u));
    assert.deepEqual(seen.map(addrs), [['10.0.0.1']]);
    a.set('web.demo', ['10.0.0.1', '10.0.0.2']);
    a.set('web.demo', ['10.0.0.2']);
    b.set('other', ['1.1.1.1']);
    await eventually(() => seen.length === 2);
    a.set('web.demo', undefined);
    await eventually(() => seen.length === 3);
    assert.deepEqual(seen.map(addrs), [['10.0.0.1'], ['10.0.0.2'], ['192.168.0.1']]);
    stop();
    assert.equal(r.size(), 0);
    r.close();
  });

  it('holds the first answer until every source is ready', async () => {
    const slow = fake('kubernetes', {}, false);
    const file = fake('file', { 'web.demo': ['192.168.0.1'] });
    const r = createResolver([slow, file], { initialWaitMs: 60_000 });
    const seen: Update[] = [];
    r.subscribe(parseAuthority('web.demo:80'), (u) => void seen.push(u));
    assert.equal(seen.length, 0);
    assert.equal(r.ready(), false);
    slow.becomeReady();
    await eventually(() => seen.length === 1);
    r.close();
  });
});
