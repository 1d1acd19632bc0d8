// The destination service in-process: a real API server on loopback, a real
// services file on disk, and the streaming client a proxy uses. What a proxy
// sees when the file changes, breaks, or the service goes away and comes back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIssuer, createTrustAnchor } from '../../ca/index.js';
import { DESTINATION_GET_PATH, type Update } from '../../contract/destination.js';
import { eventually } from '../../lab/eventually.js';
import type { ApiClientError } from '../../shared/api.js';
import { JsonStreamClient } from '../../shared/api-stream.js';
import { Log } from '../../shared/log.js';
import { startDestinationService, type DestinationService } from './index.js';

const services = (endpoints: string[]): string => `services:
  - name: web
    namespace: demo
    hosts: [web.mesh.local]
    ports: [{ port: 80, targetPort: 8080 }]
    endpoints:
${endpoints.map((a) => `      - address: ${a}\n        serviceAccount: web\n`).join('')}`;

interface Watch {
  updates: Update[];
  ended: Array<ApiClientError | undefined>;
  close(): void;
}

describe('destination service (file source)', () => {
  let dir: string;
  let file: string;
  let anchorPem: string;
  let service: DestinationService;
  const logLines: string[] = [];
  const log = new Log('info', (l) => void logLines.push(l));

  const start = (port = 0) =>
    startDestinationService({ dir, host: '127.0.0.1', port, sources: [{ kind: 'file', path: file }], trustDomain: 'cluster.local' }, { log });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-destination-'));
    const anchor = await createTrustAnchor();
    const issuer = await createIssuer(anchor);
    anchorPem = anchor.certPem;
    await writeFile(join(dir, 'ca.crt'), anchor.certPem);
    await writeFile(join(dir, 'issuer.crt'), issuer.certPem);
    await writeFile(join(dir, 'issuer.key'), issuer.keyPem, { mode: 0o600 });
    file = join(dir, 'services.yaml');
    await writeFile(file, services(['10.0.0.1']));
    service = await start();
  });
  after(async () => {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });

  const client = () => new JsonStreamClient({ url: service.url, trustAnchorPem: anchorPem, serverName: service.serverName });
  const watch = (c: JsonStreamClient, authority: string, contextNamespace?: string): Watch => {
    const w: Watch = { updates: [], ended: [], close: () => {} };
    const s = c.open(DESTINATION_GET_PATH, { authority, contextNamespace }, { onMessage: (m) => void w.updates.push(m as Update), onEnd: (e) => void w.ended.push(e) });
    w.close = s.close;
    return w;
  };
  const addresses = (u: Update | undefined): string[] => (u?.kind === 'snapshot' ? u.endpoints.map((e) => `${e.address}:${e.port}`) : []);

  it('streams the current set, then each change of the file within a second; unknown authorities are notFound', async () => {
    const c = client();
    try {
      const w = watch(c, 'web:80', 'demo');
      const unknown = watch(c, 'nobody.demo.svc.cluster.local:80');
      await eventually(() => w.updates.length === 1 && unknown.updates.length === 1, { what: 'first answers' });
      assert.deepEqual(w.updates[0], {
        kind: 'snapshot',
        authority: 'web:80',
        settings: { service: { name: 'web', namespace: 'demo' }, opaque: false },
        endpoints: [{ address: '10.0.0.1', port: 8080, namespace: 'demo', identity: 'web.demo.serviceaccount.identity.cluster.local' }],
      });
      assert.equal(unknown.updates[0]!.kind, 'notFound');
      assert.match((unknown.updates[0] as { reason: string }).reason, /no service demo\/nobody/);

      await writeFile(file, services(['10.0.0.1', '10.0.0.2']));
      await eventually(() => addresses(w.updates.at(-1)).length === 2, { timeoutMs: 1000, what: 'endpoint added within 1 s' });
      // An editor's save: write a new file and rename it into place.
      await writeFile(`${file}.tmp`, services(['10.0.0.2']));
      await rename(`${file}.tmp`, file);
      await eventually(() => addresses(w.updates.at(-1)).join() === '10.0.0.2:8080', { timeoutMs: 1000, what: 'endpoint removed within 1 s' });
      assert.equal(unknown.updates.length, 1, 'an unchanged answer is not sent again');
    } finally {
      c.close();
    }
  });

  it('a broken file is refused with its line and problem; the last good state stays', async () => {
    const c = client();
    try {
      const w = watch(c, 'web.mesh.local:80');
      await eventually(() => w.updates.length === 1);
      const before = w.updates[0];
      logLines.length = 0;
      await writeFile(file, `${services(['10.0.0.3'])}      - address: not-an-ip\n`);
      const line = String(await eventually(() => logLines.find((l) => /refused/.test(l)) ?? false, { what: 'a refusal logged' }));
      assert.match(line!, /ERROR file source refused a change, keeping the last good state file=\S+services\.yaml line=\d+ problem="\\?"not-an-ip\\?" is not an IP address"/);
      assert.equal(Number(/line=(\d+)/.exec(line!)![1]), (await readFile(file, 'utf8')).split('\n').findIndex((l) => /not-an-ip/.test(l)) + 1);
      // A new subscriber still gets the last good state.
      const late = watch(c, 'web.mesh.local:80');
      await eventually(() => late.updates.length === 1);
      assert.deepEqual(late.updates[0], before);
      assert.equal(w.updates.length, 1);
      // Fixed: it flows again.
      await writeFile(file, services(['10.0.0.4']));
      await eventually(() => addresses(w.updates.at(-1)).join() === '10.0.0.4:8080', { timeoutMs: 1000 });
    } finally {
      c.close();
    }
  });

  it('killed: streams end MESH_API_UNREACHABLE; restarted: a new stream gets updates again', async () => {
    const c = client();
    const w = watch(c, 'web.demo:80');
    await eventually(() => w.updates.length === 1);
    const port = service.address.port;
    await service.close();
    await eventually(() => w.ended.length === 1);
    assert.equal(w.ended[0]?.code, 'MESH_API_UNREACHABLE');
    service = await start(port);
    const again = watch(c, 'web.demo:80');
    await eventually(() => again.updates.length === 1);
    await writeFile(file, services(['10.0.0.5']));
    await eventually(() => addresses(again.updates.at(-1)).join() === '10.0.0.5:8080', { timeoutMs: 1000 });
    c.close();
  });

  it('refuses a malformed request before the first line', async () => {
    const c = client();
    const w = watch(c, 'no port here');
    await eventually(() => w.ended.length === 1);
    assert.equal(w.ended[0]?.code, 'MESH_API_REFUSED');
    assert.equal(w.ended[0]?.serverCode, 'MESH_DESTINATION_AUTHORITY');
    c.close();
  });
});
