// The destination service as deployed off Kubernetes: `mesh-controller
// destination --source file:…` in one pod (lab/destination.ts), `mesh
// endpoints` asking it from another over the lab network. The file changes,
// the service is killed and started again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, Lab, type Pod } from '../lab/index.js';
import { startDestination, type LabDestination } from '../lab/destination.js';
import { MeshIdentity } from '../lab/identity.js';

const meshBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'mesh.js');
const file = (addresses: string[]) => `services:
  - name: web
    namespace: demo
    ports: [{ port: 80, targetPort: 8080 }]
    endpoints:
${addresses.map((a, i) => `      - { address: ${a}, serviceAccount: web, name: web-${i} }\n`).join('')}`;

describe('destination service in a pod', () => {
  let lab: Lab;
  let server: Pod;
  let client: Pod;
  let identity: MeshIdentity;
  let destination: LabDestination;

  before(async () => {
    lab = await Lab.create();
    server = await lab.pod('dest');
    client = await lab.pod('client');
    identity = await MeshIdentity.create();
    destination = await startDestination(server, identity, { file: file(['10.0.0.1']) });
  });
  after(async () => {
    await destination?.stop();
    await lab?.destroy();
    await identity?.destroy();
  });

  const endpoints = (authority: string) =>
    client.exec(process.execPath, [meshBin, 'endpoints', authority, '--destination-url', destination.url, '--server-name', destination.serverName, '--trust-anchors', destination.trustAnchors]);

  it('answers mesh endpoints from another pod, and follows the file', async () => {
    const r = await endpoints('web.demo.svc.cluster.local:80');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAMESPACE\s+NAME\s+PORT\s+IP\s+IDENTITY\s+MESHED\s+OPAQUE\n/);
    assert.match(r.stdout, /demo\s+web-0\s+8080\s+10\.0\.0\.1\s+web\.demo\.serviceaccount\.identity\.cluster\.local\s+yes\s+no\n/);
    await writeFile(destination.servicesFile!, file(['10.0.0.1', '10.0.0.2']));
    await eventually(async () => /10\.0\.0\.2/.test((await endpoints('web.demo:80')).stdout), { what: 'the added endpoint' });
    const unknown = await endpoints('nobody.demo:80');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /is not known to the destination service/);
  });

  it('killed: mesh endpoints says it cannot ask (exit 2); started again: answers again', async () => {
    destination.process.child.kill('SIGKILL');
    await eventually(() => destination.process.child.exitCode !== null || destination.process.child.signalCode !== null, { what: 'killed' });
    const down = await endpoints('web.demo:80');
    assert.equal(down.code, 2, down.stderr);
    assert.match(down.stderr, /MESH_API_UNREACHABLE/);
    destination = await startDestination(server, identity, { file: file(['10.0.0.3']) });
    const up = await endpoints('web.demo:80');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /10\.0\.0\.3/);
  });
});
