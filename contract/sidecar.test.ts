// The contract against the programs it describes: a flag or a default that
// drifted here would make the injector write pods mesh-init or mesh-proxy reject.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initCommand } from '../cli/init.js';
import { defaults as initDefaults } from '../init/options.js';
import { loadConfig } from '../proxy/config.js';
import { DEFAULT_OPAQUE_PORTS, INIT_FLAGS, PROXY_DEFAULTS, PROXY_ENV, PROXY_OWN_PORTS, PROXY_PORTS, PROXY_UID } from './sidecar.js';

describe('sidecar contract', () => {
  it('names only flags mesh-init has', () => {
    const flags = new Set(initCommand().options.map((o) => o.long));
    for (const flag of Object.values(INIT_FLAGS)) assert.ok(flags.has(flag), `mesh-init has no ${flag}`);
  });

  it("is mesh-init's defaults", () => {
    assert.equal(initDefaults.inboundPort, PROXY_PORTS.inbound);
    assert.equal(initDefaults.outboundPort, PROXY_PORTS.outbound);
    assert.equal(initDefaults.proxyUid, PROXY_UID);
    assert.deepEqual(initDefaults.proxyPorts, [PROXY_OWN_PORTS]);
  });

  it("is mesh-proxy's defaults, and every variable it names is one the proxy reads", () => {
    const c = loadConfig({});
    assert.deepEqual(c.inbound.map((l) => l.port), [PROXY_PORTS.inbound]);
    assert.deepEqual(c.outbound.map((l) => `${l.host}:${l.port}`), PROXY_DEFAULTS.outboundAddresses.map((h) => `${h}:${PROXY_PORTS.outbound}`));
    assert.equal(c.admin.port, PROXY_PORTS.admin);
    assert.deepEqual([...c.opaquePorts], [...DEFAULT_OPAQUE_PORTS]);
    assert.equal(c.detectTimeoutMs, PROXY_DEFAULTS.detectTimeoutMs);
    // A bad value for each non-identity variable must be refused naming it: proof the proxy reads that name.
    const probes: Array<[string, string]> = [
      [PROXY_ENV.inboundPort, '0'], [PROXY_ENV.outboundPort, 'x'], [PROXY_ENV.adminPort, '70000'], [PROXY_ENV.inboundMode, 'nat'],
      [PROXY_ENV.opaquePorts, 'x'], [PROXY_ENV.detectTimeout, 'soon'], [PROXY_ENV.serverFirstWindow, 'soon'], [PROXY_ENV.serverFirstMemory, '-1'], [PROXY_ENV.serverFirstTtl, 'never'], [PROXY_ENV.logLevel, 'loud'], [PROXY_ENV.inboundAddresses, 'nope'],
      [PROXY_ENV.identityUrl, 'http://x'],
    ];
    for (const [name, value] of probes) assert.throws(() => loadConfig({ [name]: value, [PROXY_ENV.identityName]: 'a.b.serviceaccount.identity.c' }), (e: Error) => e.message.startsWith(`${name}:`), name);
  });
});
