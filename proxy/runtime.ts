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

/** The flags this process is missing, for a start-up warning. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return proxyNodeFlags.filter((f) => !execArgv.includes(f));
}
