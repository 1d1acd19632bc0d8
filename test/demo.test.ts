// `mesh demo`, the README's first command, end to end: it must build its pods,
// certify both proxies, carry every request over mTLS, report, and clean up.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const mesh = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'mesh.js');

interface DemoJson {
  requests: number;
  answered: number;
  ok: number;
  stat: Array<{ name: string }>;
  connections: Array<{ pod: string; direction: string; tls: string; peer: string }>;
}

describe('mesh demo', () => {
  it('meshes two pods with mTLS, answers every request, reports, and leaves nothing behind', async () => {
    const r = await promisify(execFile)(process.execPath, [mesh, 'demo', '--requests', '7', '-o', 'json'], { timeout: 120_000 });
    const got = JSON.parse(r.stdout) as DemoJson;
    assert.equal(got.answered, 7);
    assert.equal(got.ok, 6, 'every 7th request asks the app for a 503');
    assert.deepEqual(got.stat.map((s) => s.name).sort(), ['api', 'web']);
    const outbound = got.connections.filter((c) => c.pod === 'web' && c.direction === 'outbound');
    assert.equal(outbound.length, 7, r.stderr);
    for (const c of outbound) assert.deepEqual([c.tls, c.peer], ['true', 'api.default.serviceaccount.identity.cluster.local']);
    assert.match(r.stderr, /certified as web\.default\.serviceaccount\.identity\.cluster\.local and api\./);
    assert.match(r.stderr, /demo pods and certificates removed/);
    const prefix = /in namespaces (\S+)-\*/.exec(r.stderr)?.[1];
    assert.ok(prefix, r.stderr);
    assert.ok(!(await promisify(execFile)('ip', ['netns', 'list'])).stdout.includes(prefix), `no ${prefix}-* namespace left`);
  });
});
