import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blame, firstLine } from './iptables.js';

const script = ['*nat', ':MESH_INBOUND - [0:0]', '-A MESH_INBOUND -p tcp -j NO_SUCH', '-A PREROUTING -p tcp -j MESH_INBOUND', 'COMMIT', ''].join('\n');

describe('naming the rule iptables-restore rejected', () => {
  it('takes the line legacy reports', () => {
    assert.deepEqual(blame(script, 'iptables-restore: line 3 failed\n'), { line: 3, rule: '-A MESH_INBOUND -p tcp -j NO_SUCH' });
  });

  it('finds the rule nft complains about at COMMIT by the name it quotes', () => {
    const stderr = "iptables-nft-restore v1.8.9 (nf_tables): Chain 'NO_SUCH' does not exist\nError occurred at line: 5\n";
    assert.deepEqual(blame(script, stderr), { line: 3, rule: '-A MESH_INBOUND -p tcp -j NO_SUCH' });
  });

  it('falls back to the reported line, or nothing', () => {
    assert.deepEqual(blame(script, 'Error occurred at line: 5'), { line: 5, rule: 'COMMIT' });
    assert.equal(blame(script, 'segfault'), undefined);
  });

  it('skips warnings when quoting stderr', () => {
    assert.equal(firstLine('# Warning: iptables-legacy tables present\n\nreal problem\n'), 'real problem');
    assert.equal(firstLine(''), 'no error output');
  });
});
