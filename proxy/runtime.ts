// How the proxy's Node runtime should be started. Measured in bench/: a 2 MB
// young generation cuts RSS by ~20 MB at equal throughput (the default lets it
// grow to 16 MB per semi-space), and single-threaded GC keeps V8's helper
// threads from competing with the event loop on a sidecar's one core.
export const proxyNodeFlags: readonly string[] = ['--max-semi-space-size=2', '--single-threaded-gc'];

/** The flags this process is missing, for a start-up warning. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return proxyNodeFlags.filter((f) => !execArgv.includes(f));
}
