import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from './command.js';
import { parseDuration, parseListenAddress } from './flags.js';

describe('flag values', () => {
  it('reads Go durations as Linkerd flags take them', () => {
    assert.equal(parseDuration('--x', '24h'), 86_400_000);
    assert.equal(parseDuration('--x', '87600h'), 87_600 * 3_600_000);
    assert.equal(parseDuration('--x', '1h30m'), 5_400_000);
    assert.equal(parseDuration('--x', '1.5s'), 1500);
    assert.equal(parseDuration('--x', '250ms'), 250);
    for (const bad of ['', '24', 'h', '10x', '1h 30m', '-1h', '0s']) {
      assert.throws(() => parseDuration('--ttl', bad), (e: unknown) => e instanceof UsageError && /^--ttl: /.test(e.message), bad);
    }
  });

  it('reads listen addresses, IPv6 in brackets', () => {
    assert.deepEqual(parseListenAddress('--listen', '0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(parseListenAddress('--listen', '[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress('--listen', ':9000'), { host: '::', port: 9000 });
    for (const bad of ['8080', 'web:8080', '1.2.3.4:70000', '::1:80', '[::1]']) {
      assert.throws(() => parseListenAddress('--listen', bad), UsageError, bad);
    }
  });
});
