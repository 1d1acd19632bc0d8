// The proxy's workload identity, as a story: a proxy starts with no identity
// service to talk to and is not ready; the service comes up and the proxy is
// certified and ready; short-lived certificates are renewed again and again;
// the service goes away and the proxy keeps its certificate (and readiness)
// while logging failures; the service returns and the proxy renews again.
// Real processes in a lab pod: `mesh-controller identity` issuing 20 s leaves,
// and `mesh-proxy` with the MESH_PROXY_IDENTITY_* variables.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Out } from '../cli/command.js';
import { runIdentityInit } from '../cli/identity-init.js';
import { runIdentityToken } from '../cli/identity-token.js';
import { eventually, Lab, patienceMs, type Pod, type PodProcess } from './harness/index.js';
import { node, startProxy } from './mesh.js';

const TD = 'cluster.local';
const WEB = `web.emojivoto.serviceaccount.identity.${TD}`;
const HOUR = 3_600_000;
const controller = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'mesh-controller.js');
// Renewals come every 10 s (the floor) for a 20 s leaf: a wait spans a couple of them.
const patience = { timeoutMs: 3 * patienceMs(), intervalMs: 200 };

function capture(): Out & { out: string; err: string } {
  const c = { out: '', err: '', stdout: (t: string) => void (c.out += t), stderr: (t: string) => void (c.err += t) };
  return c;
}

describe('proxy identity: certified, renewed, and riding out an identity-service outage', () => {
  let lab: Lab;
  let pod: Pod;
  let dir: string;
  let proxy: PodProcess;
  let service: PodProcess | undefined;

  const startService = async (): Promise<PodProcess> => {
    const p = pod.spawn(node, [controller, 'identity', '--dir', dir, '--listen', '127.0.0.1:8080', '--leaf-lifetime', '20s']);
    await p.waitForLine(/INFO listening /);
    return p;
  };
  const ready = async (): Promise<number> => {
    const r = await pod.execOk('curl', ['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:4191/ready']);
    return Number(r.stdout);
  };
  const metric = async (re: RegExp): Promise<number> => {
    const r = await pod.execOk('curl', ['-sS', '--max-time', '2', 'http://127.0.0.1:4191/metrics']);
    const m = re.exec(r.stdout);
    return m ? Number(m[1]) : NaN;
  };
  const expiry = () => metric(/^identity_cert_expiration_timestamp_seconds (\S+)$/m);
  const refreshes = (result: 'success' | 'failure') => metric(new RegExp(`^identity_cert_refresh_total\\{result="${result}"\\} (\\S+)$`, 'm'));
  const count = (re: RegExp) => proxy.lines().filter((l) => re.test(l)).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-proxy-identity-'));
    const c = capture();
    const init = { trustDomain: TD, dir, anchorValidityMs: 87_600 * HOUR, issuerValidityMs: 8_760 * HOUR, output: 'pem' as const, force: false, rotateTokenKey: false, namespace: 'mesh' };
    assert.equal(await runIdentityInit(init, { now: () => new Date() }, c), 0, c.err);
    const t = capture();
    assert.equal(await runIdentityToken({ namespace: 'emojivoto', serviceAccount: 'web', dir, ttlMs: 24 * HOUR }, { now: () => new Date() }, t), 0, t.err);
    await writeFile(join(dir, 'web.token'), t.out, { mode: 0o644 });
    // The proxy runs as uid 2102: it reads the anchor and its token, nothing else.
    await chmod(dir, 0o755);
    await chmod(join(dir, 'ca.crt'), 0o644);
    lab = await Lab.create();
    pod = await lab.pod('web');
  });

  after(async () => {
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is not ready until certified, renews at 70% of the life, keeps its certificate through an outage, and recovers', async () => {
    proxy = await startProxy(pod, {
      MESH_PROXY_IDENTITY_URL: 'https://127.0.0.1:8080',
      MESH_PROXY_IDENTITY_NAME: WEB,
      MESH_PROXY_IDENTITY_TOKEN_FILE: join(dir, 'web.token'),
      MESH_PROXY_IDENTITY_TRUST_ANCHORS: join(dir, 'ca.crt'),
    });
    // No identity service yet: listening, alive, but not ready.
    await proxy.waitForLine(/WARN identity refresh failed code=MESH_API_UNREACHABLE retry_in=\d/);
    assert.equal(await ready(), 503);

    service = await startService();
    await proxy.waitForLine(new RegExp(`INFO identity certified name=${WEB.replace(/\./g, '\\.')} not_after=\\S+Z`), patience.timeoutMs);
    await eventually(async () => assert.equal(await ready(), 200), { ...patience, what: '/ready 200 once certified' });

    // Two renewals: each moves the expiry forward.
    let last = await expiry();
    assert.ok(last * 1000 > Date.now(), `the certificate is valid (expires ${last})`);
    for (let i = 0; i < 2; i++) {
      const seen = last;
      last = await eventually(async () => {
        const now = await expiry();
        assert.ok(now > seen, `expiry ${now} after ${seen}`);
        return now;
      }, { ...patience, what: `renewal ${i + 1}` });
    }
    assert.ok((await refreshes('success')) >= 3);
    assert.ok(count(/INFO identity certified /) >= 3);

    // The service goes away: failures are logged, the held certificate still serves.
    await service.stop();
    service = undefined;
    const failedBefore = count(/WARN identity refresh failed /);
    await eventually(() => assert.ok(count(/WARN identity refresh failed code=MESH_API_UNREACHABLE retry_in=\S+s /) > failedBefore), { ...patience, what: 'a refresh failure logged' });
    const held = await expiry();
    assert.equal(held, last, 'still holding the last certificate');
    assert.ok(held * 1000 > Date.now(), 'which is still valid');
    assert.equal(await ready(), 200);
    assert.ok((await refreshes('failure')) >= 2, 'the start-up failure and this one');

    // Back again: the next retry succeeds.
    service = await startService();
    await eventually(async () => assert.ok((await expiry()) > held), { ...patience, what: 'renewed after the outage' });
    assert.equal(await ready(), 200);
    assert.equal(proxy.lines().filter((l) => / (ERROR) /.test(l)).length, 0, proxy.output());
  });
});
