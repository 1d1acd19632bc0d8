// prom-client, as much of it as the proxy uses. Its index also loads the
// Pushgateway (http, https, zlib) and, through the process CPU counter of its
// default metrics, @opentelemetry/api for exemplars. Measured in a bare node,
// the index costs +10 MB of RSS and these parts +2 MB; in a running proxy
// (which touches much of the same node code anyway) idle RSS went 69 -> 68 MB.
// So the registry, counter and gauge come from their own files, and the
// default metrics are registered one by one, the CPU counters by our own code
// (same names, help and values, no exemplars). prom-client's version is pinned
// by the lock file; prom.test.ts checks what loads, metrics.test.ts the names.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const require = createRequire(import.meta.url);
const lib = (file: string): unknown => require(`prom-client/lib/${file}`);

export const Registry = lib('registry') as typeof Prom.Registry;
export const Counter = lib('counter') as typeof Prom.Counter;
export const Gauge = lib('gauge') as typeof Prom.Gauge;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;

type DefaultMetric = (registry: Prom.Registry, config: { eventLoopMonitoringPrecision: number }) => void;

// What collectDefaultMetrics() registers, less processCpuTotal (the exemplar import).
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;

/** process_* and nodejs_* series, as prom-client's collectDefaultMetrics() names them. */
export function registerProcessMetrics(registry: Prom.Registry): void {
  let last = process.cpuUsage();
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    // One collect() brings all three up to date, as prom-client's own does.
    collect() {
      const now = process.cpuUsage();
      const u = (now.user - last.user) / 1e6;
      const s = (now.system - last.system) / 1e6;
      last = now;
      user.inc(u);
      system.inc(s);
      total.inc(u + s);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers: [registry] });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers: [registry] });
  // The event-loop delay histogram samples on a timer of this period: prom-client's 10 ms woke an
  // idle proxy ~200 times a second, ~1% of a core doing nothing (and enough to keep the memory
  // reclaimer from ever seeing it quiet); 100 ms costs ~0.2% and still catches every stall.
  for (const name of DEFAULT_METRICS) (lib(`metrics/${name}`) as DefaultMetric)(registry, { eventLoopMonitoringPrecision: 100 });
}
