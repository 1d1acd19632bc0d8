// The connector's HTTP/1 pools: one per endpoint, made on first use, and let go once they hold
// no connection (endpoints come and go with rollouts; each one ever dialled kept its entry).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H1Pool } from '../h1/index.js';
import { Log } from '../log.js';
import type { ClientStream } from '../message/types.js';
import { Upstreams, type H1PoolLike } from './upstreams.js';

class FakePool implements H1PoolLike {
  idle = 0;
  active = 0;
  request(): ClientStream {
    throw new Error('not used');
  }
  close(): void {}
}

describe('Upstreams: HTTP/1 pools', () => {
  it('keeps a pool with a connection, idle or busy, and lets go of one with none; the next request makes it again', () => {
    const made: FakePool[] = [];
    const ups = new Upstreams({ connectTimeoutMs: 1000, log: new Log('error', () => {}), h1Pool: () => (made.push(new FakePool()), made[made.length - 1]!) });
    const at = (port: number) => ({ address: '10.0.0.1', port, family: 4 as const });
    const idle = ups.h1(at(1), '10.0.0.1:1') as FakePool;
    const busy = ups.h1(at(2), '10.0.0.1:2') as FakePool;
    const empty = ups.h1(at(3), '10.0.0.1:3') as FakePool;
    idle.idle = 1;
    busy.active = 1;
    ups.prune();
    assert.equal(ups.h1(at(1), '10.0.0.1:1'), idle, 'a pool with an idle connection is kept');
    assert.equal(ups.h1(at(2), '10.0.0.1:2'), busy, 'a pool with a busy connection is kept');
    const again = ups.h1(at(3), '10.0.0.1:3');
    assert.notEqual(again, empty, 'a pool with no connection was let go, and made again when asked for');
    assert.equal(made.length, 4);
    ups.drain();
  });

  it('the HTTP/1 pool tells what it holds', () => {
    const pool: H1PoolLike = new H1Pool({ dial: () => Promise.reject(new Error('not used')) });
    assert.deepEqual([pool.idle, pool.active], [0, 0]);
  });
});
