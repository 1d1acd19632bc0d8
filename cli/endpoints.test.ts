// `mesh endpoints` against a real destination service (file source) on loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIssuer, createTrustAnchor } from '../ca/index.js';
import { startDestinationService, type DestinationService } from '../controller/destination/index.js';
import { Log } from '../shared/log.js';
import { runEndpoints, type EndpointsOptions } from './endpoints.js';

const FILE = `services:
  - name: web
    namespace: demo
    ports: [{ port: 80, targetPort: 8080 }]
    endpoints:
      - { address: 10.0.0.1, serviceAccount: web, name: web-1, zone: a, labels: { app: web } }
      - { address: 10.0.0.2, name: legacy-vm }
  - name: db
    namespace: demo
    opaque-ports: "5432"
    ports: [5432]
    endpoints:
      - { address: 10.0.0.9, serviceAccount: db, name: db-0 }
`;

describe('mesh endpoints', () => {
  let dir: string;
  let anchorPem: string;
  let service: DestinationService;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-endpoints-'));
    const anchor = await createTrustAnchor();
    const issuer = await createIssuer(anchor);
    anchorPem = anchor.certPem;
    await writeFile(join(dir, 'ca.crt'), anchor.certPem);
    await writeFile(join(dir, 'issuer.crt'), issuer.certPem);
    await writeFile(join(dir, 'issuer.key'), issuer.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'services.yaml'), FILE);
    service = await startDestinationService(
      { dir, host: '127.0.0.1', port: 0, sources: [{ kind: 'file', path: join(dir, 'services.yaml') }], trustDomain: 'cluster.local' },
      { log: new Log('error') },
    );
  });
  after(async () => {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (authority: string, o: Partial<EndpointsOptions> = {}) => {
    const c = { out: '', err: '', stdout: (t: string) => void (c.out += t), stderr: (t: string) => void (c.err += t) };
    const code = await runEndpoints({ authority, output: 'table', destinationUrl: service.url, serverName: service.serverName, trustAnchorPem: anchorPem, timeoutMs: 3000, ...o }, c);
    return { code, out: c.out, err: c.err };
  };

  it('prints a kubectl-style table', async () => {
    const r = await run('web:80', { namespace: 'demo' });
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      [
        'NAMESPACE   NAME        PORT   IP         IDENTITY                                         MESHED   OPAQUE',
        'demo        web-1       8080   10.0.0.1   web.demo.serviceaccount.identity.cluster.local   yes      no',
        'demo        legacy-vm   8080   10.0.0.2   -                                                no       no',
        '',
      ].join('\n'),
    );
    const db = await run('db.demo.svc.cluster.local:5432', { output: 'wide' });
    assert.match(db.out, /^NAMESPACE\s+NAME\s+PORT\s+IP\s+IDENTITY\s+MESHED\s+OPAQUE\s+ZONE\s+LABELS\n/);
    assert.match(db.out, /demo\s+db-0\s+5432\s+10\.0\.0\.9\s+db\.demo\.\S+\s+yes\s+yes\s+-\s+-\n/);
  });

  it('-o json prints the update as the proxy gets it', async () => {
    const r = await run('10.0.0.1:8080', { output: 'json' });
    assert.equal(r.code, 0);
    const u = JSON.parse(r.out) as { kind: string; endpoints: Array<{ name: string }> };
    assert.equal(u.kind, 'snapshot');
    assert.deepEqual(u.endpoints.map((e) => e.name), ['web-1']);
  });

  it('an unknown authority: a clear message, exit 1', async () => {
    const r = await run('nobody.demo.svc.cluster.local:80');
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /nobody\.demo\.svc\.cluster\.local:80 is not known to the destination service \(file:\S+: no service demo\/nobody\)/);
  });

  it('an unreachable or untrusted service: a clear message, exit 2', async () => {
    const r = await run('web.demo:80', { destinationUrl: 'https://127.0.0.1:1' });
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot ask the destination service: .*\[MESH_API_UNREACHABLE\]/);
    const u = await run('web.demo:80', { serverName: 'someone.else.serviceaccount.identity.cluster.local' });
    assert.equal(u.code, 2);
    assert.match(u.err, /MESH_API_SERVER_UNTRUSTED/);
  });
});
