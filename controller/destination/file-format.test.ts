// The file source's format: what a file means, and that every refusal names its line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthority } from './authority.js';
import { resolveIn } from './catalog.js';
import { FileSourceError, parseServicesFile } from './file-format.js';

const GOOD = `# two services
services:
  - name: web
    namespace: demo
    hosts: [web.mesh.local]
    addresses: [10.96.0.10]
    ports:
      - port: 80
        targetPort: 8080
      - 9090
    timeout: 2s
    retry-http: 500,503
    retry-grpc: unavailable,14
    retry-limit: 2
    opaque-ports: "9090"
    endpoints:
      - address: 10.0.0.5
        serviceAccount: web
        zone: zone-a
        labels: { version: v1 }
        name: web-1
        opaque-ports: [5432]
      - address: fd00::6
        port: 8181
        identity: web.demo.serviceaccount.identity.example.org
  - name: db
    ports: [5432]
    endpoints:
      - address: 10.0.0.9
`;

const parse = (text: string) => parseServicesFile('/etc/mesh/services.yaml', text, { trustDomain: 'cluster.local' });
const refused = (text: string, line: number, problem: RegExp) => () =>
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof FileSourceError, String(e));
    assert.equal(e.line, line, e.message);
    assert.match(e.problem, problem);
    assert.match(e.message, new RegExp(`^/etc/mesh/services.yaml:${line}: `));
    return true;
  });

describe('file source format', () => {
  const catalog = parse(GOOD);
  const resolve = (authority: string, contextNamespace?: string) => resolveIn(catalog, parseAuthority(authority, { contextNamespace }));

  it('answers a service by full name, short names, host names and virtual address, with its settings', () => {
    for (const [authority, ns] of [
      ['web.demo.svc.cluster.local:80', undefined],
      ['web.demo:80', undefined],
      ['web:80', 'demo'],
      ['web.demo.svc:80', undefined],
      ['WEB.mesh.local:80', undefined],
      ['10.96.0.10:80', undefined],
    ] as const) {
      const r = resolve(authority, ns);
      assert.equal(r.kind, 'found', `${authority}: ${JSON.stringify(r)}`);
      if (r.kind !== 'found') continue;
      assert.deepEqual(r.settings, { service: { name: 'web', namespace: 'demo' }, opaque: false, timeoutMs: 2000, retryHttp: [500, 503], retryGrpc: ['unavailable', '14'], retryLimit: 2 });
      assert.deepEqual(r.endpoints, [
        { address: '10.0.0.5', namespace: 'demo', port: 8080, identity: 'web.demo.serviceaccount.identity.cluster.local', zone: 'zone-a', labels: { version: 'v1' }, name: 'web-1', opaquePorts: [5432] },
        { address: 'fd00::6', namespace: 'demo', port: 8181, identity: 'web.demo.serviceaccount.identity.example.org' },
      ]);
    }
    const opaque = resolve('web.demo:9090');
    assert.ok(opaque.kind === 'found' && opaque.settings.opaque && opaque.endpoints[0]!.port === 9090);
    const db = resolve('db.default.svc.cluster.local:5432');
    assert.ok(db.kind === 'found' && db.endpoints.length === 1 && db.endpoints[0]!.identity === undefined);
  });

  it('answers an endpoint by its own address:port, alone; unknown ports and names are unknown', () => {
    const one = resolve('10.0.0.5:8080');
    assert.ok(one.kind === 'found');
    assert.deepEqual(one.endpoints.map((e) => [e.address, e.port, e.name]), [['10.0.0.5', 8080, 'web-1']]);
    const v6 = resolve('[fd00::6]:8181');
    assert.ok(v6.kind === 'found' && v6.endpoints[0]!.address === 'fd00::6');
    assert.equal(resolve('10.0.0.5:1234').kind, 'unknown');
    assert.equal(resolve('web.demo:81').kind, 'unknown');
    assert.equal(resolve('web:80', 'other').kind, 'unknown');
    assert.equal(resolve('api.example.com:443').kind, 'unknown');
  });

  it('an empty file knows nothing (and is not an error)', () => {
    assert.equal(parse('').services.size, 0);
    assert.equal(parse('services:\n').services.size, 0);
  });

  it('refuses YAML that does not parse, naming the line', refused('services:\n  - name: web\n    ports: [80\n', 4, /./));
  it('refuses an unknown key (a typo is not "no endpoints")', refused('services:\n  - name: web\n    ports: [80]\n    enpoints: []\n', 4, /unknown key "enpoints"/));
  it('refuses a bad address', refused('services:\n  - name: web\n    ports: [80]\n    endpoints:\n      - address: 10.0.0.999\n', 5, /not an IP address/));
  it('refuses a bad timeout', refused('services:\n  - name: web\n    ports: [80]\n    timeout: soon\n', 4, /timeout: "soon" is not a duration/));
  it('refuses a bad retry-http', refused('services:\n  - name: web\n    ports: [80]\n    retry-http: 4xx\n', 4, /retry-http/));
  it('refuses a port out of range', refused('services:\n  - name: web\n    ports:\n      - port: 70000\n', 4, /port number/));
  it('refuses a service declared twice', refused('services:\n  - name: web\n    ports: [80]\n  - name: web\n    ports: [81]\n', 4, /declared twice \(first on line 2\)/));
  it('refuses a missing name', refused('services:\n  - ports: [80]\n', 2, /missing `name`/));
  it('refuses both identity and serviceAccount', refused('services:\n  - name: web\n    ports: [80]\n    endpoints:\n      - address: 10.0.0.1\n        identity: a.b\n        serviceAccount: a\n', 5, /not both/));
  it('refuses a host name two services claim', refused('services:\n  - name: a\n    hosts: [x.local]\n    ports: [80]\n  - name: b\n    hosts: [x.local]\n    ports: [80]\n', 6, /already names service default\/a/));
});
