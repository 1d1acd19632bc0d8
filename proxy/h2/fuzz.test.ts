import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from './fuzz.js';

test('fuzz: a seeded slice of mutated frame sequences never throws or fails internally', async () => {
  const res = await fuzz({ iterations: 1_000_000, seed: 3, timeMs: 4000 });
  assert.ok(res.iterations > 1000, `only ${res.iterations} cases`);
  assert.deepEqual(res.failures, []);
});
