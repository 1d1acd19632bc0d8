import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { defaults, parseCidrList, parsePortList, type Family, type InitOptions } from './options.js';
import { desiredRules, multiportChunks, noRules, chains } from './rules.js';
import { restoreScript } from './reconcile.js';

const opts = (over: Partial<InitOptions>): InitOptions => ({ ...defaults, ...over });

/** Every combination of the options that change the rules. */
function* combinations(): Generator<{ name: string; o: InitOptions }> {
  for (const mode of ['redirect', 'tproxy'] as const)
    for (const inbound of ['', '80,443'])
      for (const skipIn of ['', '22,8000-8100'])
        for (const skipOut of ['', '25,587,3306-3307'])
          for (const subnets of ['', '10.0.0.0/8', '10.0.0.0/8,fd00::/8', 'fd00::/8'])
            for (const gid of [undefined, 2103]) {
              const o = opts({
                mode,
                inboundPorts: parsePortList(inbound, 't'),
                skipInboundPorts: parsePortList(skipIn, 't'),
                skipOutboundPorts: parsePortList(skipOut, 't'),
                skipSubnets: parseCidrList(subnets, 't'),
                ...(gid === undefined ? {} : { proxyGid: gid }),
              });
              yield { name: `${mode} in=${inbound} skipIn=${skipIn} skipOut=${skipOut} subnets=${subnets} gid=${gid}`, o };
            }
}

const chainOf = (o: InitOptions, family: Family, name: string): string[] =>
  desiredRules(o, family).chains.find((c) => c.chain === name)?.rules ?? [];

const canTestWithKernel = process.getuid?.() === 0 && spawnSync('unshare', ['--version']).status === 0;

describe('rule generation', () => {
  it('renders the default REDIRECT layout exactly', () => {
    const script = restoreScript(desiredRules(defaults, 4), {});
    assert.equal(
      script,
      [
        '*nat',
        ':MESH_INBOUND - [0:0]',
        ':MESH_OUTBOUND - [0:0]',
        '-A MESH_INBOUND -i lo -m comment --comment "mesh-init: loopback is never intercepted" -j RETURN',
        '-A MESH_INBOUND -p tcp -m multiport --dports 4190:4191 -m comment --comment "mesh-init: proxy ports are reached directly" -j RETURN',
        '-A MESH_INBOUND -p tcp -m comment --comment "mesh-init: redirect inbound TCP to proxy port 4143" -j REDIRECT --to-ports 4143',
        '-A MESH_OUTBOUND -m owner --uid-owner 2102 -m comment --comment "mesh-init: proxy traffic is not intercepted" -j RETURN',
        '-A MESH_OUTBOUND -o lo -m comment --comment "mesh-init: loopback is never intercepted" -j RETURN',
        '-A MESH_OUTBOUND -p tcp -m comment --comment "mesh-init: redirect outbound TCP to proxy port 4140" -j REDIRECT --to-ports 4140',
        '-A PREROUTING -p tcp -m comment --comment "mesh-init: inbound" -j MESH_INBOUND',
        '-A OUTPUT -p tcp -m comment --comment "mesh-init: outbound" -j MESH_OUTBOUND',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('splits multiport lists at 15 ports, a range counting two', () => {
    const many = parsePortList('1,2,3,4,5,6,7,8,9,10,11,12,13,14,20-30,40', 't');
    const chunks = multiportChunks(many);
    assert.deepEqual(chunks, ['1,2,3,4,5,6,7,8,9,10,11,12,13,14', '20:30,40']);
    for (const c of chunks) {
      const weight = c.split(',').reduce((w, p) => w + (p.includes(':') ? 2 : 1), 0);
      assert.ok(weight <= 15);
    }
    assert.deepEqual(multiportChunks([]), []);
  });

  for (const { name, o } of combinations()) {
    it(`keeps its invariants: ${name}`, () => {
      for (const family of [4, 6] as const) {
        const want = desiredRules(o, family);
        const inbound = chainOf(o, family, chains.inbound);
        const outbound = chainOf(o, family, chains.outbound);
        const capture = o.mode === 'redirect' ? 'REDIRECT --to-ports 4143' : 'TPROXY --on-port 4143';
        const firstCapture = inbound.findIndex((r) => r.includes(capture));
        const lastReturn = Math.max(...inbound.map((r, i) => (r.endsWith('-j RETURN') ? i : -1)));
        // Skips must come before the capture or they never match.
        assert.ok(firstCapture > lastReturn, 'inbound RETURNs precede the capture');
        assert.equal(inbound.filter((r) => r.includes(capture)).length, o.inboundPorts.length === 0 ? 1 : 1);
        assert.match(outbound[0]!, /--uid-owner 2102 .* -j RETURN$/);
        assert.match(outbound.at(-1)!, /-j REDIRECT --to-ports 4140$/);
        assert.equal(outbound.some((r) => r.includes('--gid-owner 2103')), o.proxyGid !== undefined);
        // Subnets of the other family would be rejected by the other binary.
        for (const c of o.skipSubnets) {
          const present = [...inbound, ...outbound].some((r) => r.includes(c.text));
          assert.equal(present, c.family === family, `${c.text} in IPv${family} rules`);
        }
        assert.equal(inbound.some((r) => r.includes('--dports 22,8000:8100')), o.skipInboundPorts.length > 0);
        assert.equal(outbound.some((r) => r.includes('--dports 25,587,3306:3307')), o.skipOutboundPorts.length > 0);
        if (o.inboundPorts.length > 0) assert.ok(inbound[firstCapture]!.includes('--dports 80,443'));
        if (o.mode === 'tproxy') {
          assert.ok(inbound[firstCapture]!.includes(family === 4 ? '--on-ip 0.0.0.0' : '--on-ip ::'));
          assert.deepEqual(new Set(want.jumps.map((j) => `${j.table}/${j.from}`)), new Set(['mangle/PREROUTING', 'nat/OUTPUT']));
        } else {
          assert.deepEqual(new Set(want.jumps.map((j) => `${j.table}/${j.from}`)), new Set(['nat/PREROUTING', 'nat/OUTPUT']));
        }
        if (canTestWithKernel) {
          // The kernel's own parser is the judge of syntax: --test parses and
          // checks every rule without committing, in a throwaway namespace.
          const bin = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
          const r = spawnSync('unshare', ['--net', bin, '--test'], { input: restoreScript(want, {}) });
          assert.equal(r.status, 0, `${bin} --test: ${r.stderr}`);
        }
      }
    });
  }

  it('cleanup of nothing is an empty script', () => {
    assert.equal(restoreScript(noRules(4), {}), '');
  });
});
