import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTrustAnchor } from '../../ca/index.js';
import { ConfigError, loadConfig } from '../config.js';

const NAME = 'web.emojivoto.serviceaccount.identity.cluster.local';

describe('MESH_PROXY_IDENTITY_* variables', () => {
  let dir: string;
  let anchorPem: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-proxy-identity-config-'));
    anchorPem = (await createTrustAnchor({ trustDomain: 'cluster.local' })).certPem;
    await writeFile(join(dir, 'ca.crt'), anchorPem);
    await writeFile(join(dir, 'token'), 'jwt\n');
    await writeFile(join(dir, 'junk.pem'), 'not a certificate\n');
    env = {
      MESH_PROXY_IDENTITY_URL: 'https://mesh-identity.mesh.svc:8080',
      MESH_PROXY_IDENTITY_NAME: NAME,
      MESH_PROXY_IDENTITY_TOKEN_FILE: join(dir, 'token'),
      MESH_PROXY_IDENTITY_TRUST_ANCHORS: join(dir, 'ca.crt'),
    };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads the discovery variables: destination URL (needs identity, for its anchors), server name, namespace, wait, idle', () => {
    assert.equal(loadConfig(env).discovery, undefined, 'no URL: no discovery');
    const c = loadConfig({ ...env, MESH_PROXY_DESTINATION_URL: 'https://mesh-destination.mesh.svc:8086', MESH_PROXY_NAMESPACE: 'emojivoto', MESH_PROXY_DISCOVERY_WAIT: '250ms' });
    assert.deepEqual(c.discovery, {
      url: 'https://mesh-destination.mesh.svc:8086',
      serverName: 'mesh-destination.mesh.serviceaccount.identity.cluster.local',
      trustAnchorsPem: c.identity!.trustAnchorsPem,
      namespace: 'emojivoto',
      waitMs: 250,
      idleMs: 300_000,
    });
    assert.equal(loadConfig({ ...env, MESH_PROXY_DESTINATION_URL: 'https://d:8086', MESH_PROXY_DESTINATION_SERVER_NAME: 'other.name' }).discovery?.serverName, 'other.name');
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ MESH_PROXY_DESTINATION_URL: 'https://d:8086' }, /^MESH_PROXY_DESTINATION_URL: needs identity/],
      [{ ...env, MESH_PROXY_DESTINATION_URL: 'http://d:8086' }, /^MESH_PROXY_DESTINATION_URL: "http:\/\/d:8086" is not an https:\/\/ URL/],
      [{ ...env, MESH_PROXY_DESTINATION_URL: 'https://d:8086', MESH_PROXY_NAMESPACE: 'Not_A_NS' }, /^MESH_PROXY_NAMESPACE: /],
      [{ ...env, MESH_PROXY_DESTINATION_URL: 'https://d:8086', MESH_PROXY_DISCOVERY_WAIT: 'soon' }, /^MESH_PROXY_DISCOVERY_WAIT: /],
    ];
    for (const [e, re] of bad) assert.throws(() => loadConfig(e), (err: unknown) => err instanceof ConfigError && re.test(err.message));
  });

  it('reads the meshed destinations and identity-required ports, which need identity', () => {
    const c = loadConfig({ ...env, MESH_PROXY_MESHED_DESTINATIONS: `10.0.0.7=${NAME}, 10.1.0.0/16=${NAME}`, MESH_PROXY_REQUIRE_IDENTITY_PORTS: '8080,9000-9001' });
    assert.equal(c.meshedDestinations.identityOf({ address: '10.1.2.3', port: 80, family: 4 }), NAME);
    assert.equal(c.meshedDestinations.identityOf({ address: '10.2.0.1', port: 80, family: 4 }), undefined);
    assert.deepEqual([...c.requireIdentityPorts], [8080, 9000, 9001]);
    for (const variable of ['MESH_PROXY_MESHED_DESTINATIONS', 'MESH_PROXY_REQUIRE_IDENTITY_PORTS']) {
      const value = variable === 'MESH_PROXY_MESHED_DESTINATIONS' ? `10.0.0.7=${NAME}` : '8080';
      assert.throws(() => loadConfig({ [variable]: value }), (e: unknown) => e instanceof ConfigError && e.message === `${variable}: needs identity: set MESH_PROXY_IDENTITY_URL (and the other MESH_PROXY_IDENTITY_* variables)`);
    }
    assert.throws(
      () => loadConfig({ ...env, MESH_PROXY_MESHED_DESTINATIONS: '10.0.0.7' }),
      (e: unknown) => e instanceof ConfigError && /^MESH_PROXY_MESHED_DESTINATIONS: "10.0.0.7" is not ADDRESS\[\/PREFIX\]=IDENTITY$/.test(e.message),
    );
  });

  it('is off without MESH_PROXY_IDENTITY_URL, whatever else is set', () => {
    assert.equal(loadConfig({}).identity, undefined);
    assert.equal(loadConfig({ MESH_PROXY_IDENTITY_NAME: 'nonsense' }).identity, undefined);
  });

  it('reads the anchors at start-up and defaults the server name to the service’s own', () => {
    assert.deepEqual(loadConfig(env).identity, {
      url: 'https://mesh-identity.mesh.svc:8080',
      name: NAME,
      tokenFile: join(dir, 'token'),
      trustAnchorsPem: anchorPem,
      serverName: 'mesh-identity.mesh.serviceaccount.identity.cluster.local',
    });
    assert.equal(loadConfig({ ...env, MESH_PROXY_IDENTITY_SERVER_NAME: 'identity.example.org' }).identity?.serverName, 'identity.example.org');
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['MESH_PROXY_IDENTITY_URL', { MESH_PROXY_IDENTITY_URL: 'http://identity:8080' }, /must be an https:\/\/ URL/],
    ['MESH_PROXY_IDENTITY_URL', { MESH_PROXY_IDENTITY_URL: 'https://identity:8080/v1' }, /without a path/],
    ['MESH_PROXY_IDENTITY_URL', { MESH_PROXY_IDENTITY_URL: 'not a url' }, /is not a URL/],
    ['MESH_PROXY_IDENTITY_NAME', { MESH_PROXY_IDENTITY_NAME: '' }, /must be set when MESH_PROXY_IDENTITY_URL is/],
    ['MESH_PROXY_IDENTITY_NAME', { MESH_PROXY_IDENTITY_NAME: 'web.emojivoto.svc.cluster.local' }, /is not an identity name/],
    ['MESH_PROXY_IDENTITY_TOKEN_FILE', { MESH_PROXY_IDENTITY_TOKEN_FILE: '/nonexistent/token' }, /cannot read \/nonexistent\/token \(ENOENT\)/],
    ['MESH_PROXY_IDENTITY_TRUST_ANCHORS', { MESH_PROXY_IDENTITY_TRUST_ANCHORS: '' }, /must be set/],
    ['MESH_PROXY_IDENTITY_TRUST_ANCHORS', { MESH_PROXY_IDENTITY_TRUST_ANCHORS: 'JUNK' }, /holds no PEM certificate/],
    ['MESH_PROXY_IDENTITY_SERVER_NAME', { MESH_PROXY_IDENTITY_SERVER_NAME: 'Not A Name' }, /is not a lowercase DNS name/],
  ];
  for (const [variable, change, message] of bad) {
    it(`refuses ${variable}=${JSON.stringify(Object.values(change)[0])}`, () => {
      const e2 = { ...env, ...change };
      if (e2.MESH_PROXY_IDENTITY_TRUST_ANCHORS === 'JUNK') e2.MESH_PROXY_IDENTITY_TRUST_ANCHORS = join(dir, 'junk.pem');
      assert.throws(() => loadConfig(e2), (e: unknown) => e instanceof ConfigError && e.variable === variable && message.test(e.message));
    });
  }
});
