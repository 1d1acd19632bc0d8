import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityName, parseIdentityName, serviceAccountOf, tokenSubject } from './identity.js';
import { throwsWith } from './fixtures.js';

describe('identity names', () => {
  it('builds and reads back Linkerd-shaped names', () => {
    const name = identityName('web', 'default', 'cluster.local');
    assert.equal(name, 'web.default.serviceaccount.identity.cluster.local');
    assert.deepEqual(parseIdentityName(name), { serviceAccount: 'web', namespace: 'default', trustDomain: 'cluster.local' });
    assert.deepEqual(parseIdentityName('a-1.ns.serviceaccount.identity.prod.example.com'), {
      serviceAccount: 'a-1',
      namespace: 'ns',
      trustDomain: 'prod.example.com',
    });
  });

  it('refuses what is not a lowercase DNS label, naming the part', () => {
    throwsWith(() => identityName('Web', 'default', 'cluster.local'), 'MESH_CA_BAD_IDENTITY', /service account "Web"/);
    throwsWith(() => identityName('a.b', 'default', 'cluster.local'), 'MESH_CA_BAD_IDENTITY', /service account "a.b"/);
    throwsWith(() => identityName('web', '-ns', 'cluster.local'), 'MESH_CA_BAD_IDENTITY', /namespace "-ns"/);
    throwsWith(() => identityName('web', 'x'.repeat(64), 'cluster.local'), 'MESH_CA_BAD_IDENTITY', /namespace/);
    throwsWith(() => identityName('web', 'default', 'cluster..local'), 'MESH_CA_BAD_IDENTITY', /trust domain/);
    throwsWith(() => identityName('web', 'default', `${'d'.repeat(63)}.`.repeat(4) + 'x'), 'MESH_CA_BAD_IDENTITY');
    assert.match(identityName('w'.repeat(63), 'default', 'cluster.local'), /^w{63}\.default\.serviceaccount\./);
  });

  it('parses only complete names', () => {
    for (const bad of [
      'web.default.identity.cluster.local',
      'web.default.serviceaccount.identity',
      'web.default.serviceaccount.identity.cluster.local.',
      'web.default.serviceaccounts.identity.cluster.local',
      'web..serviceaccount.identity.cluster.local',
      'WEB.default.serviceaccount.identity.cluster.local',
      '',
    ]) {
      throwsWith(() => parseIdentityName(bad), 'MESH_CA_BAD_IDENTITY');
    }
  });

  it('reads service accounts from token subjects', () => {
    assert.deepEqual(serviceAccountOf('system:serviceaccount:default:web'), { namespace: 'default', serviceAccount: 'web' });
    assert.equal(tokenSubject('default', 'web'), 'system:serviceaccount:default:web');
    for (const bad of ['system:serviceaccount:default', 'system:node:a:b', 'system:serviceaccount:Default:web', 'system:serviceaccount:ns:a:b']) {
      throwsWith(() => serviceAccountOf(bad), 'MESH_CA_BAD_IDENTITY', /system:serviceaccount:<namespace>:<name>|namespace|service account/);
    }
  });
});
