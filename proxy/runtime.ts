import { existsSync } from 'node:fs';

// How the proxy's Node runtime should be started. Measured in bench/: a small
// young generation cuts RSS by ~20 MB at equal throughput (the default lets it
// grow to 16 MB per semi-space), and single-threaded GC keeps V8's helper
// threads from competing with the event loop on a sidecar's one core.
// 4 MB rather than 2 (bench/micro, the pair under load): at 2 MB a scavenge came
// every ~120 requests, soon enough to catch in-flight requests twice and promote
// them (1.3 KB a request, old space grown to ~55 MB between full collections);
// 4 MB halved that, cut GC from ~6 to ~4 µs a request and the pair's CPU by ~10%,
// and lowered RSS under load.
export const proxyNodeFlags: readonly string[] = ['--max-semi-space-size=4', '--single-threaded-gc'];

/**
 * jemalloc instead of glibc's malloc, preloaded where the system has it. Most of
 * an idle mTLS connection is OpenSSL's native state, and glibc's allocator
 * spreads it thinly: measured with 5,000 idle TLS 1.3 connections in one Node
 * process, 46 KB each under glibc against 28 KB under jemalloc, at about the same
 * CPU per request (bench/micro). Where none is found the proxy runs on glibc.
 * Its settings: one arena (the proxy is one thread doing the work; more arenas
 * only hold more idle memory), and freed pages handed back within a second
 * (the default of 10 s kept the idle proxy ~7 MB larger after start-up).
 */
export const JEMALLOC_CONF = 'narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0';
const JEMALLOC_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
];

export function jemallocPath(): string | undefined {
  return JEMALLOC_PATHS.find((p) => existsSync(p));
}

/** The environment a proxy process should start with (added to its own): jemalloc preloaded when there is one. */
export function proxyProcessEnv(base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const lib = jemallocPath();
  if (lib === undefined || (base.LD_PRELOAD ?? '').includes('jemalloc')) return {};
  return { LD_PRELOAD: base.LD_PRELOAD ? `${lib}:${base.LD_PRELOAD}` : lib, MALLOC_CONF: base.MALLOC_CONF ?? JEMALLOC_CONF };
}

/** Whether this process runs on jemalloc (preloaded), for a start-up note. */
export function onJemalloc(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.LD_PRELOAD ?? '').includes('jemalloc');
}

/** The flags this process is missing, for a start-up warning. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return proxyNodeFlags.filter((f) => !execArgv.includes(f));
}
