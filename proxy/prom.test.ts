// The proxy's slice of prom-client: what it loads (a child process, so this
// file's own imports do not count) and the process series it still exposes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const child = `
import { createRequire } from 'node:module';
const { ProxyMetrics } = await import(${JSON.stringify(new URL('./metrics.js', import.meta.url).href)});
const m = new ProxyMetrics(true);
for (const until = performance.now() + 30; performance.now() < until; );
const text = await m.registry.metrics();
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ loaded, text }));
`;

describe('prom-client in the proxy', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8', cwd: new URL('.', import.meta.url).pathname });
  const out = JSON.parse(r.stdout || '{}') as { loaded?: string[]; text?: string };

  it('loads neither the Pushgateway nor @opentelemetry/api', () => {
    assert.equal(r.status, 0, r.stderr);
    const loaded = out.loaded ?? [];
    assert.ok(loaded.some((f) => f.includes('prom-client/lib/registry')), 'the registry is prom-client’s');
    assert.deepEqual(loaded.filter((f) => /@opentelemetry|pushgateway|defaultMetrics|prom-client\/index/.test(f)), []);
  });

  it('still exposes the process and nodejs series, the CPU counters counting', () => {
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(out.text ?? '')?.[1]);
    for (const name of ['process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'process_max_fds', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(Number.isFinite(value(name)), `${name} missing`);
    }
    const total = value('process_cpu_seconds_total');
    assert.ok(total >= 0.03, `30 ms of CPU burnt, process_cpu_seconds_total says ${total}`);
    assert.ok(Math.abs(total - value('process_cpu_user_seconds_total') - value('process_cpu_system_seconds_total')) < 1e-6, 'total = user + system');
  });
});
