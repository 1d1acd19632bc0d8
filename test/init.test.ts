// mesh-init against a real kernel: idempotent, reversible, atomic, and clear
// about bad input. Each case runs in its own fresh pod.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type Pod } from './harness/index.js';
import { bin, ipRules, meshInit, node, ruleset } from './mesh.js';
import { applyPlan, defaults, InitError, planInit, type InitOptions } from '../init/index.js';

describe('mesh-init on a real kernel', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
  });
  after(() => lab?.destroy());

  let n = 0;
  const freshPod = (): Promise<Pod> => lab.pod(`p${n++}`);

  /** Rules and routes of both families, nft and legacy: everything mesh-init may touch. */
  const state = async (pod: Pod): Promise<string> =>
    [
      await ruleset(pod, 4),
      await ruleset(pod, 6),
      await ruleset(pod, 4, 'legacy'),
      await ruleset(pod, 6, 'legacy'),
      await ipRules(pod, 4),
      await ipRules(pod, 6),
    ].join('\n---\n');

  for (const mode of ['redirect', 'tproxy']) {
    it(`${mode}: applying twice gives the same ruleset, cleanup restores the original`, async () => {
      const pod = await freshPod();
      // Someone else's rules, before and after ours, must survive untouched and in place.
      await pod.execOk('iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9999', '-j', 'REDIRECT', '--to-ports', '9998']);
      await pod.execOk('iptables', ['-t', 'mangle', '-A', 'PREROUTING', '-p', 'udp', '-j', 'MARK', '--set-mark', '7']);
      const original = await state(pod);
      const args = ['--mode', mode, '--skip-subnets', '10.0.0.0/8,fd00::/8', '--skip-inbound-ports', '22'];
      await meshInit(pod, args);
      const once = await state(pod);
      assert.notEqual(once, original);
      assert.match(once, /-A PREROUTING -p tcp -m tcp --dport 9999 -j REDIRECT --to-ports 9998\n/);
      await pod.execOk('iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9997', '-j', 'RETURN']);
      const withLater = await state(pod);
      await meshInit(pod, args);
      assert.equal(await state(pod), withLater, 'second apply changes nothing, not even rule order');
      await pod.execOk('iptables', ['-t', 'nat', '-D', 'PREROUTING', '-p', 'tcp', '--dport', '9997', '-j', 'RETURN']);
      await meshInit(pod, ['--cleanup']);
      assert.equal(await state(pod), original);
      await meshInit(pod, ['--cleanup']);
      assert.equal(await state(pod), original, 'cleanup twice is harmless');
    });
  }

  it('switching modes leaves no trace of the previous one', async () => {
    const pod = await freshPod();
    await meshInit(pod, ['--mode', 'redirect']);
    const redirectOnly = await state(pod);
    await meshInit(pod, ['--mode', 'tproxy']);
    assert.match(await ruleset(pod, 4), /TPROXY/);
    await meshInit(pod, ['--mode', 'redirect']);
    assert.equal(await state(pod), redirectOnly);
  });

  it('a rule the kernel rejects leaves every table, family and route as it was', async () => {
    const pod = await freshPod();
    await meshInit(pod, ['--mode', 'redirect']);
    const before = await state(pod);
    // Plan a switch to TPROXY inside the pod, then spoil the last table of the
    // IPv6 script: IPv4 and IPv6 nat will already have committed when it fails.
    const script = `
      const m = await import('${new URL('../init/index.js', import.meta.url).href}');
      const plan = await m.planInit({ ...m.defaults, mode: 'tproxy' }, 'apply');
      const v6 = plan.families.find((f) => f.family === 6);
      v6.script = v6.script.replace(/COMMIT\\n$/, '-A MESH_INBOUND -p tcp -j NO_SUCH_TARGET\\nCOMMIT\\n');
      try { await m.applyPlan(plan); console.log('applied'); } catch (e) { console.log(e.code + ' ' + e.message); }`;
    const r = await pod.execOk(node, ['--input-type=module', '-e', script]);
    assert.match(r.stdout, /^MESH_INIT_RULE_REJECTED .*line \d+: -A MESH_INBOUND -p tcp -j NO_SUCH_TARGET.*nothing was changed/);
    assert.equal(await state(pod), before);
  });

  it('auto picks the legacy backend when that is where the rules already are', async () => {
    const pod = await freshPod();
    await pod.execOk('iptables-legacy', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9999', '-j', 'RETURN']);
    await meshInit(pod);
    assert.match(await ruleset(pod, 4, 'legacy'), /-j MESH_OUTBOUND/);
    assert.doesNotMatch(await ruleset(pod, 4, 'nft'), /MESH_/);
    await meshInit(pod, ['--cleanup', '--iptables-mode', 'legacy']);
    assert.doesNotMatch(await ruleset(pod, 4, 'legacy'), /MESH_/);
  });

  it('--dry-run prints the restore script and changes nothing', async () => {
    const pod = await freshPod();
    const before = await state(pod);
    const r = await pod.execOk(node, [bin.init, '--dry-run', '--mode', 'tproxy']);
    assert.match(r.stdout, /# IPv4: \S+iptables-nft-restore --noflush\n\*nat\n/);
    assert.match(r.stdout, /-j TPROXY --on-port 4143 --on-ip :: /);
    assert.match(r.stdout, /^ip -4 rule add fwmark 1337 lookup 133$/m);
    assert.equal(await state(pod), before);
  });

  const refusals: Array<{ name: string; args: string[]; env?: Record<string, string>; uid?: number; error: RegExp }> = [
    { name: 'an unknown flag', args: ['--redirect-everything'], error: /^mesh-init: unknown option '--redirect-everything'/ },
    { name: 'a port out of range', args: ['--skip-outbound-ports', '25,65536'], error: /^mesh-init: --skip-outbound-ports: "65536" is not a port/ },
    { name: 'a bad CIDR', args: ['--skip-subnets', '10.0.0.0/33'], error: /^mesh-init: --skip-subnets: "10.0.0.0\/33" is not/ },
    { name: 'a bad mode', args: ['--mode', 'ebpf'], error: /^mesh-init: --mode: "ebpf" is not one of redirect, tproxy/ },
    { name: 'a missing iptables binary', args: [], env: { PATH: '/nonexistent' } /* applied through env(1) */, error: /^mesh-init: .*iptables.* (not found|is installed).*\[MESH_INIT_NO_IPTABLES\]/ },
    { name: 'no CAP_NET_ADMIN', args: [], uid: 65534, error: /^mesh-init: mesh-init needs CAP_NET_ADMIN.*\[MESH_INIT_NO_CAP_NET_ADMIN\]/ },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name}: one line, exit 2, nothing applied`, async () => {
      const pod = await freshPod();
      const before = await state(pod);
      // env(1) sets PATH for mesh-init alone; the harness itself needs PATH to find `ip`.
      const envArgs = Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`);
      const r = await pod.exec('env', [...envArgs, node, bin.init, ...c.args], c.uid ? { uid: c.uid } : {});
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, c.error);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.equal(await state(pod), before);
    });
  }

  it('library callers get typed errors', async () => {
    const noCap = { run: async () => ({ code: 0, stdout: '', stderr: '' }), hasNetAdmin: () => false, ipv6Available: () => true, log: () => {} };
    const o: InitOptions = { ...defaults };
    await assert.rejects(planInit(o, 'apply', noCap), (e: unknown) => e instanceof InitError && e.code === 'MESH_INIT_NO_CAP_NET_ADMIN' && e.exitCode === 2);
    await applyPlan({ action: 'apply', backend: 'nft', families: [] }, noCap);
  });
});
