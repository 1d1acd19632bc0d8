// How the proxy's Node runtime should be started. Measured in bench/: a small
// young generation cuts RSS by ~20 MB at equal throughput (the default lets it
// grow to 16 MB per semi-space), and single-threaded GC keeps V8's helper
// threads from competing with the event loop on a sidecar's one core.
// 4 MB rather than 2 (bench/micro, the pair under load): at 2 MB a scavenge came
// every ~120 requests, soon enough to catch in-flight requests twice and promote
// them (1.3 KB a request, old space grown to ~55 MB between full collections);
// 4 MB halved that, cut GC from ~6 to ~4 µs a request and the pair's CPU by ~10%,
// and lowered RSS under load.
// And 4 MB from the start (--min-semi-space-size): V8 otherwise begins at 1 MB and
// grows it only as survivors show up, and a memory-reducing collection (memory.ts)
// shrinks it back, so a load began with the small young generation's GC cost:
// measured 5 µs of GC a request against 1-2.4 with it fixed at 4, ~15% of
// throughput; the price is ~3 MB of RSS (idle 62 -> 65 MB).
export const proxyNodeFlags: readonly string[] = ['--max-semi-space-size=4', '--min-semi-space-size=4', '--single-threaded-gc'];

/** The flags this process is missing, for a start-up warning. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return proxyNodeFlags.filter((f) => !execArgv.includes(f));
}
