import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzz } from './fuzz.js';

describe('HTTP/1 parser fuzz (seeded CI slice)', () => {
  it('no exception, splits never change the outcome, generated messages parse back, llhttp agrees but for the listed differences', () => {
    const s = fuzz(40_000, 42, 'both', 5_000);
    assert.ok(s.inputs > 1000, `only ${s.inputs} inputs`);
    assert.equal(s.exceptions, 0, s.samples.join('\n'));
    assert.equal(s.splitMismatches, 0, s.samples.join('\n'));
    assert.equal(s.generatedMismatches, 0, s.samples.join('\n'));
    assert.equal(s.differences, 0, s.samples.join('\n'));
  });
});
