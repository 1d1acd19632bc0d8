// What the limits suites share (test/limits.test.ts, test/h2-sessions.test.ts): a meshed pair of
// pods at info level, and readings of a proxy's memory from /proc and from its /metrics.
import { readFileSync } from 'node:fs';
import { eventually, Lab, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { meshInit, proxiesReady, startProxy } from './mesh.js';

/** A field of a pod process's /proc status (pods share the host's pid namespace), in KiB. */
function statusKb(proc: PodProcess, field: 'VmRSS' | 'RssAnon'): number {
  const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
}

/** Resident memory of a pod process, in KiB. */
export const rssKb = (proc: PodProcess): number => statusKb(proc, 'VmRSS');

/** Anonymous resident memory of a pod process (heaps, buffers), in KiB: what connections cost. */
export const anonKb = (proc: PodProcess): number => statusKb(proc, 'RssAnon');

/** Where the resident memory is: anonymous (heaps), file-backed (code), in KiB. */
export function memoryParts(proc: PodProcess): string {
  const rollup = readFileSync(`/proc/${proc.child.pid}/smaps_rollup`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return `rss ${kb('Rss')} KiB (anon ${kb('Anonymous')}, file ${kb('Rss') - kb('Anonymous')})`;
}

/** The V8 heap and the memory V8 knows outside it (Buffers, TLS), from the proxy's own /metrics, in KiB. */
export async function heapParts(pod: Pod): Promise<string> {
  const text = (await pod.execOk('curl', ['-sS', '--max-time', '10', 'http://127.0.0.1:4191/metrics'])).stdout;
  const kib = (name: string): number => Math.round(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024);
  return `heap used ${kib('nodejs_heap_size_used_bytes')} of ${kib('nodejs_heap_size_total_bytes')} KiB, external ${kib('nodejs_external_memory_bytes')} KiB`;
}

/** Sum of a counter's samples on a proxy's /metrics whose labels include `match`. */
export async function counter(pod: Pod, name: string, match = ''): Promise<number> {
  const text = (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(match))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** Two meshed pods: a client pod A and a server pod B, each with its proxy. */
export interface Mesh {
  lab: Lab;
  a: Pod;
  b: Pod;
  proxyA: PodProcess;
  proxyB: PodProcess;
  identity?: MeshIdentity;
}

// info, not the harness's debug: debug logs a line per connection, which at
// 10,000 connections is CPU and memory the proxy would not spend in production.
const QUIET = { MESH_PROXY_LOG_LEVEL: 'info', MESH_PROXY_IDLE_TIMEOUT: '10m' };

export async function meshPair(o: { mtls: boolean; env?: Record<string, string>; nofile?: number }): Promise<Mesh> {
  const lab = await Lab.create();
  const [a, b] = [await lab.pod('a'), await lab.pod('b')];
  await meshInit(a);
  await meshInit(b);
  const env = { ...QUIET, ...o.env };
  let [envA, envB] = [env, env];
  let identity: MeshIdentity | undefined;
  if (o.mtls) {
    identity = await MeshIdentity.create();
    const control = await lab.pod('mesh');
    await identity.startService(control);
    const pair = await identity.meshedPair(control, 'default', 'a', b, 'b');
    [envA, envB] = [{ ...env, ...pair.client }, { ...env, ...pair.server }];
  }
  const limit = o.nofile === undefined ? {} : { nofile: o.nofile };
  const proxyA = await startProxy(a, envA, [], limit);
  const proxyB = await startProxy(b, envB, [], limit);
  await proxiesReady(a, b);
  return { lab, a, b, proxyA, proxyB, ...(identity ? { identity } : {}) };
}

export async function destroy(m: Mesh | undefined): Promise<void> {
  await m?.lab.destroy();
  await m?.identity?.destroy();
}

/** The lines a proxy logged for each time it reclaimed memory (proxy/memory.ts: a memory-reducing collection, then malloc_trim). */
export function reclaimLines(proc: PodProcess): string[] {
  return proc.lines().filter((l) => l.includes('memory reclaimed after load'));
}

/** How many times a proxy has reclaimed memory. */
export const reclaims = (proc: PodProcess): number => reclaimLines(proc).length;

/** Waits until a proxy has reclaimed more than `n` times. */
export async function reclaimedMoreThan(proc: PodProcess, n: number): Promise<void> {
  await eventually(() => reclaims(proc) > n, { timeoutMs: 60_000, intervalMs: 250, what: `the proxy's reclaim number ${n + 1}` });
}
