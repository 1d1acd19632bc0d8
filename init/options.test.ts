import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InitError } from './errors.js';
import { parseCidr, parseMark, parsePortList, parseTable, parseUid, formatPorts } from './options.js';

function rejects(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof InitError && e.code === code && pattern.test(e.message) && e.exitCode === 2);
}

describe('option parsing', () => {
  it('reads port lists and ranges', () => {
    assert.deepEqual(parsePortList('80, 443,8000-8100,', 'f'), [
      { from: 80, to: 80 },
      { from: 443, to: 443 },
      { from: 8000, to: 8100 },
    ]);
    assert.equal(formatPorts(parsePortList('1,2-3', 'f')), '1,2-3');
    assert.deepEqual(parsePortList('', 'f'), []);
  });

  it('names the flag and value of a bad port', () => {
    rejects(() => parsePortList('80,70000', '--skip-inbound-ports'), 'MESH_INIT_BAD_PORT', /--skip-inbound-ports: "70000"/);
    rejects(() => parsePortList('0', '--x'), 'MESH_INIT_BAD_PORT', /"0"/);
    rejects(() => parsePortList('http', '--x'), 'MESH_INIT_BAD_PORT', /"http"/);
    rejects(() => parsePortList('9-1', '--x'), 'MESH_INIT_BAD_PORT', /backwards/);
    rejects(() => parsePortList('1-2-3', '--x'), 'MESH_INIT_BAD_PORT', /"2-3"/);
  });

  it('reads IPv4 and IPv6 CIDRs and rejects bad ones', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8', 'f'), { family: 4, text: '10.0.0.0/8' });
    assert.deepEqual(parseCidr('fd00::/8', 'f'), { family: 6, text: 'fd00::/8' });
    assert.deepEqual(parseCidr('192.0.2.7', 'f'), { family: 4, text: '192.0.2.7/32' });
    for (const bad of ['10.0.0.0/33', '300.1.1.1/8', 'fd00::/129', 'example.com/8', '10.0.0.0/', '10.0.0.0/x']) {
      rejects(() => parseCidr(bad, '--skip-subnets'), 'MESH_INIT_BAD_CIDR', /--skip-subnets/);
    }
  });

  it('validates ids, marks and tables', () => {
    assert.equal(parseUid('2102', 'f'), 2102);
    rejects(() => parseUid('-1', '--proxy-uid'), 'MESH_INIT_BAD_FLAG', /--proxy-uid/);
    assert.equal(parseMark('0x539', 'f'), 1337);
    assert.equal(parseMark('1337', 'f'), 1337);
    rejects(() => parseMark('0', '--tproxy-mark'), 'MESH_INIT_BAD_FLAG', /non-zero/);
    rejects(() => parseTable('254', '--route-table'), 'MESH_INIT_BAD_FLAG', /routing table/);
    assert.equal(parseTable('133', 'f'), 133);
  });
});
