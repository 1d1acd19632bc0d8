import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, defaultOpaquePorts, loadConfig, parseDuration } from './config.js';

describe('proxy configuration from MESH_PROXY_* variables', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    assert.deepEqual(c.inbound, [{ host: '::', port: 4143 }]);
    assert.deepEqual(c.outbound, [{ host: '127.0.0.1', port: 4140 }, { host: '::1', port: 4140 }]);
    assert.deepEqual(c.admin, { host: '::', port: 4191 });
    assert.deepEqual([...c.opaquePorts].sort((x, y) => x - y), defaultOpaquePorts);
    assert.equal(c.detectTimeoutMs, 10_000);
    assert.equal(c.connectTimeoutOutboundMs, 1000);
    assert.equal(c.connectTimeoutInboundMs, 100);
    assert.equal(c.inboundMode, 'redirect');
    assert.equal(c.memorySoftLimitBytes, 64 * 1048576);
  });

  it('reads every variable', () => {
    const c = loadConfig({
      MESH_PROXY_INBOUND_PORT: '5143',
      MESH_PROXY_OPAQUE_PORTS: '3306, 8000-8002',
      MESH_PROXY_DETECT_TIMEOUT: '500ms',
      MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT: '2s',
      MESH_PROXY_INBOUND_MODE: 'tproxy',
      MESH_PROXY_LOG_LEVEL: 'debug',
      MESH_PROXY_ADMIN_PORT: '9990',
      MESH_PROXY_MEMORY_SOFT_LIMIT_MIB: '0',
    });
    assert.equal(c.inbound[0]!.port, 5143);
    assert.deepEqual([...c.opaquePorts], [3306, 8000, 8001, 8002]);
    assert.equal(c.detectTimeoutMs, 500);
    assert.equal(c.connectTimeoutOutboundMs, 2000);
    assert.equal(c.inboundMode, 'tproxy');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.admin.port, 9990);
    assert.equal(c.memorySoftLimitBytes, 0, '0: reclaim only when quiet');
    assert.equal(loadConfig({ MESH_PROXY_OPAQUE_PORTS: '' }).opaquePorts.size, 0, 'an empty list means none');
  });

  it('names the variable and the value it cannot use', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ MESH_PROXY_INBOUND_PORT: '70000' }, /^MESH_PROXY_INBOUND_PORT: "70000" is not a port/],
      [{ MESH_PROXY_DETECT_TIMEOUT: 'soon' }, /^MESH_PROXY_DETECT_TIMEOUT: "soon" is not a duration/],
      // 0 would fail every connect (a 1 ms timer); past 2^31-1 ms Node fires after 1 ms too.
      [{ MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT: '0' }, /^MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT: "0" is no time at all/],
      [{ MESH_PROXY_HEAD_TIMEOUT: '0s' }, /^MESH_PROXY_HEAD_TIMEOUT: "0s" is no time at all/],
      [{ MESH_PROXY_DETECT_TIMEOUT: '40000m' }, /^MESH_PROXY_DETECT_TIMEOUT: "40000m" is longer than a timer can wait/],
      [{ MESH_PROXY_CONTROL_PORT: '4191' }, /^MESH_PROXY_CONTROL_PORT: port 4191 is MESH_PROXY_ADMIN_PORT's too/],
      [{ MESH_PROXY_OPAQUE_PORTS: '5432,x' }, /^MESH_PROXY_OPAQUE_PORTS: "x"/],
      [{ MESH_PROXY_OPAQUE_PORTS: '9-3' }, /^MESH_PROXY_OPAQUE_PORTS: "9-3"/],
      [{ MESH_PROXY_INBOUND_MODE: 'ebpf' }, /^MESH_PROXY_INBOUND_MODE: "ebpf" is not one of redirect, tproxy/],
      [{ MESH_PROXY_OUTBOUND_ADDRESSES: 'localhost' }, /^MESH_PROXY_OUTBOUND_ADDRESSES: "localhost" is not an IP address/],
      [{ MESH_PROXY_DETECT_MAX_BYTES: '1' }, /^MESH_PROXY_DETECT_MAX_BYTES: "1" is not a whole number from 64/],
      [{ MESH_PROXY_MEMORY_SOFT_LIMIT_MIB: '64Mi' }, /^MESH_PROXY_MEMORY_SOFT_LIMIT_MIB: "64Mi" is not a whole number from 0/],
    ];
    for (const [env, message] of bad) {
      assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.code === 'MESH_PROXY_BAD_CONFIG' && message.test(e.message));
    }
  });

  it('parses durations', () => {
    assert.equal(parseDuration('X', '1.5s'), 1500);
    assert.equal(parseDuration('X', '1m'), 60_000);
    assert.equal(parseDuration('X', '250'), 250);
  });
});
