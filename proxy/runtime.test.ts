import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JEMALLOC_CONF, jemallocPath, onJemalloc, proxyProcessEnv } from './runtime.js';

describe('proxy runtime environment', () => {
  const lib = jemallocPath();

  it('preloads jemalloc where the system has it, ahead of what is preloaded already', { skip: lib === undefined && 'no libjemalloc.so.2 here (scripts/setup.sh installs it)' }, () => {
    assert.deepEqual(proxyProcessEnv({}), { LD_PRELOAD: lib, MALLOC_CONF: JEMALLOC_CONF });
    assert.deepEqual(proxyProcessEnv({ LD_PRELOAD: '/opt/trace.so', MALLOC_CONF: 'narenas:2' }), { LD_PRELOAD: `${lib}:/opt/trace.so`, MALLOC_CONF: 'narenas:2' });
  });

  it('adds nothing when jemalloc is preloaded already, and says so', () => {
    assert.deepEqual(proxyProcessEnv({ LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' }), {});
    assert.equal(onJemalloc({ LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' }), true);
    assert.equal(onJemalloc({}), false);
  });
});
