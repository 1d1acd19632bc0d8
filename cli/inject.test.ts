// `mesh inject` against golden files: for every kind, annotation mode and
// --manual, stdout and the stderr summary. MESH_UPDATE_GOLDEN=1 rewrites them
// (then read the diff). Every document written out is also checked against the
// Kubernetes schema, and --manual's pods against what the webhook would write.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { assertValid } from '../test/kubernetes-schema.js';
import { runInject, type InjectOptions } from './inject.js';

const dir = new URL('../../cli/testdata/inject/', import.meta.url);
const anchors = new URL('../../cli/testdata/trust-anchors.pem', import.meta.url).pathname;
const update = process.env.MESH_UPDATE_GOLDEN === '1';

async function run(file: string, extra: Partial<InjectOptions> = {}, stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const options: InjectOptions = { file, manual: false, nativeSidecar: true, image: 'mesh:test', namespace: 'mesh', trustDomain: 'cluster.local', trustAnchors: anchors, ...extra };
  const code = await runInject(options, { readStdin: async () => stdin, version: 'test' }, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

function golden(name: string, actual: string): void {
  const path = new URL(name, dir);
  if (update || !existsSync(path)) writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs from its golden file (MESH_UPDATE_GOLDEN=1 to accept)`);
}

const kinds = ['deployment', 'statefulset', 'daemonset', 'replicaset', 'job', 'cronjob', 'pod', 'list', 'namespace', 'multi'];

describe('mesh inject', () => {
  for (const kind of kinds) {
    for (const manual of [false, true]) {
      const mode = manual ? 'manual' : 'annotate';
      it(`${kind}, ${mode}`, async () => {
        const r = await run(new URL(`${kind}.yaml`, dir).pathname, { manual });
        assert.equal(r.code, 0, r.err);
        golden(`${kind}.${mode}.golden.yaml`, r.out);
        golden(`${kind}.${mode}.stderr.golden`, r.err);
        for (const doc of parseAllDocuments(r.out)) assertValid(doc.toJS());
      });
    }
  }

  it('keeps every comment of the input', async () => {
    const input = readFileSync(new URL('multi.yaml', dir), 'utf8');
    const r = await run(new URL('multi.yaml', dir).pathname, { manual: true });
    for (const comment of input.match(/#.*$/gm)!) assert.ok(r.out.includes(comment), `lost ${comment}`);
  });

  it('--manual writes what the webhook writes, as a regular container when asked', async () => {
    const r = await run(new URL('pod.yaml', dir).pathname, { manual: true });
    const pod = parseAllDocuments(r.out)[0]!.toJS() as { spec: { containers: { name: string }[]; initContainers: { name: string }[] }; metadata: { annotations: Record<string, string> } };
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['mesh-proxy', 'shell'], 'config.mesh.io/native-sidecar: "false" on the pod');
    assert.deepEqual(pod.spec.initContainers.map((c) => c.name), ['mesh-init']);
    assert.equal(pod.metadata.annotations['mesh.io/injected-by'], 'cli');
    assert.equal(pod.metadata.annotations['mesh.io/identity-trust-anchors'], readFileSync(anchors, 'utf8'));
  });

  it('is idempotent: injecting its own output changes nothing', async () => {
    for (const manual of [false, true]) {
      const first = await run(new URL('deployment.yaml', dir).pathname, { manual });
      const second = await run('-', { manual }, first.out);
      assert.equal(second.out, first.out);
      assert.match(second.err, manual ? /deployment "web" skipped \(already injected\)/ : /deployment "web" injected/);
    }
  });

  it('reads standard input', async () => {
    const r = await run('-', {}, readFileSync(new URL('job.yaml', dir), 'utf8'));
    assert.equal(r.err, 'job "report" injected\n');
  });

  it('a bad annotation: the workload left as it was, one line naming it, exit 2', async () => {
    const r = await run(new URL('bad-annotation.yaml', dir).pathname, { manual: true });
    assert.equal(r.code, 2);
    assert.equal(r.out, readFileSync(new URL('bad-annotation.yaml', dir), 'utf8'));
    assert.equal(r.err, 'deployment "bad" not injected: config.mesh.io/skip-inbound-ports="70000" (pod): "70000" is not a port (1-65535)\n');
  });

  it('bad input: one line, exit 2', async () => {
    assert.deepEqual(await run('/nonexistent.yaml'), { code: 2, out: '', err: 'mesh inject: cannot read /nonexistent.yaml (ENOENT) (see mesh inject --help)\n' });
    const notYaml = await run('-', {}, 'a: [1,\n');
    assert.equal(notYaml.code, 2);
    assert.match(notYaml.err, /^mesh inject: standard input: not YAML \(.*\) \(see mesh inject --help\)\n$/);
    const noAnchors = await run(new URL('pod.yaml', dir).pathname, { manual: true, trustAnchors: '/nonexistent.pem' });
    assert.equal(noAnchors.code, 2);
    assert.match(noAnchors.err, /--trust-anchors: \/nonexistent.pem: ENOENT/);
  });
});
