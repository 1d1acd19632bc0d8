import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from './fuzz.js';

// A seeded slice of fuzz.ts for CI: a few seconds, same checks as the long run.
test('fuzz slice: round trips, hpack.js differential both ways, mutations', () => {
  const stats = runFuzz({ iterations: 200_000, seed: 7, timeLimitMs: 6000 });
  assert.ok(
    stats.roundTrips > 100 && stats.fromReference > 20 && stats.toReference > 20 && stats.mutations > 50,
    `${stats.iterations} iterations: ${stats.roundTrips} / ${stats.fromReference} / ${stats.toReference} / ${stats.mutations}`,
  );
});
