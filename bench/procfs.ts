// What the kernel knows about a process: resident memory and CPU time, read from /proc.
// Pids are global (pods are network namespaces only), so the bench reads them directly.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export interface Memory {
  /** Resident now (VmRSS), MB. */
  rssMb: number;
  /** Highest resident so far (VmHWM), MB. */
  hwmMb: number;
  /** Of rssMb: anonymous (heaps, buffers) and file-backed (the executable's and libraries' pages), MB; absent in older results. */
  anonMb?: number;
  fileMb?: number;
}

export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]);
  };
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 };
}

let ticksPerSecond: number | undefined;

function ticks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/**
 * /proc/PID/stat's fields after the command name: the name (field 2) may hold spaces and
 * parentheses, so they are counted after the last ')'; field N of the whole line is [N - 3].
 */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime (fields 14 and 15) in milliseconds. */
const cpuOf = (fields: string[]): number => ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks();

/** User + system CPU time of the whole process (all threads), in milliseconds. */
export function cpuMs(pid: number): number {
  return cpuOf(statFields(pid));
}

/** Page faults the process has taken that needed no disk read (minflt, field 10): a freshly mapped, zeroed page each, among others. */
export function minorFaults(pid: number): number {
  return Number(statFields(pid)[7]);
}

/** The CPUs this process may run on, from Cpus_allowed_list ("0-1,4"). */
export function allowedCpus(): number[] {
  const status = readFileSync('/proc/self/status', 'utf8');
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '0';
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo!; c <= (hi ?? lo!); c++) cpus.push(c);
  }
  return cpus;
}

export interface CpuTimes {
  busy: number;
  /** Time the hypervisor gave this virtual CPU to someone else. */
  steal: number;
  total: number;
}

/** Per-CPU jiffies from /proc/stat, to tell which side of a run was the bottleneck. */
export function cpuTimes(): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[2]!.trim().split(/\s+/).map(Number);
    const busy = user + nice + system + irq + softirq;
    out.set(Number(m[1]), { busy, steal, total: busy + idle + iowait + steal });
  }
  return out;
}

/** Share (0..100) of `cpus`' time between two cpuTimes() snapshots that was busy, or stolen. */
export function cpuPercent(before: Map<number, CpuTimes>, after: Map<number, CpuTimes>, cpus: number[], what: 'busy' | 'steal'): number {
  let part = 0;
  let total = 0;
  for (const c of cpus) {
    const a = before.get(c);
    const b = after.get(c);
    if (!a || !b) continue;
    part += b[what] - a[what];
    total += b.total - a.total;
  }
  return total > 0 ? (100 * part) / total : NaN;
}

/**
 * CPU time (ms) of every user process outside the given network namespaces, except this one:
 * the other work that shared the machine with a run. Kernel threads are left out, since they
 * also carry the bench's own packets. Processes that start and end between two snapshots are
 * missed, so this is a lower bound.
 */
export function foreignCpu(ownNamespaces: readonly string[]): Map<number, number> {
  const own = new Set<number>();
  for (const ns of ownNamespaces) {
    try {
      own.add(statSync(`/run/netns/${ns}`).ino);
    } catch {
      // Already deleted; nothing can run in it.
    }
  }
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const fields = statFields(pid);
      // Field 4 (ppid) is 2 for kernel threads, whose parent is kthreadd; kthreadd is pid 2.
      if (pid === 2 || fields[1] === '2') continue;
      const ino = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]);
      if (own.has(ino)) continue;
      out.set(pid, cpuOf(fields));
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** Foreign CPU between two foreignCpu() snapshots, as a share (0..100) of all CPUs over `ms`. */
export function foreignPercent(before: Map<number, number>, after: Map<number, number>, ms: number, cpus: number): number {
  let used = 0;
  for (const [pid, t] of after) used += t - (before.get(pid) ?? 0);
  return (100 * used) / (ms * cpus);
}
