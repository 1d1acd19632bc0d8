import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, patienceMs } from './eventually.js';

describe('eventually', () => {
  it('retries a throwing probe and resolves with its value', async () => {
    let calls = 0;
    const value = await eventually(() => {
      if (++calls < 3) throw new Error('not yet');
      return 'ready';
    }, { intervalMs: 1 });
    assert.deepEqual([value, calls], ['ready', 3]);
  });

  it('waits for a boolean probe to become true', async () => {
    let calls = 0;
    assert.equal(await eventually(async () => ++calls >= 3, { intervalMs: 1 }), true);
    assert.equal(calls, 3);
  });

  it('names the condition and the last failure on timeout', async () => {
    await assert.rejects(
      eventually(() => { throw new Error('ECONNREFUSED'); }, { timeoutMs: 50, what: 'the proxy to accept' }),
      /timed out after 50 ms waiting for the proxy to accept: ECONNREFUSED/,
    );
  });

  it('does not let a hanging probe outlive the deadline', async () => {
    await assert.rejects(eventually(() => new Promise(() => {}), { timeoutMs: 50 }), /still running at deadline/);
  });

  it('takes its default patience from MESH_TEST_PATIENCE_MS', () => {
    const saved = process.env.MESH_TEST_PATIENCE_MS;
    try {
      process.env.MESH_TEST_PATIENCE_MS = '1234';
      assert.equal(patienceMs(), 1234);
      process.env.MESH_TEST_PATIENCE_MS = 'soon';
      assert.equal(patienceMs(), 10_000);
    } finally {
      if (saved === undefined) delete process.env.MESH_TEST_PATIENCE_MS;
      else process.env.MESH_TEST_PATIENCE_MS = saved;
    }
  });
});
