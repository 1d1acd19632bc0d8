// CPU placement. On two cores the load generator gets one and everything that serves (nginx,
// the proxies) the other, as in NODE-NOTES: the numbers then compare the paths rather than how
// the scheduler happened to mix a generator with the things it is measuring.
import { execFileSync } from 'node:child_process';
import { allowedCpus } from './procfs.js';

export interface Pinning {
  /** CPUs for load generators. */
  load: number[];
  /** CPUs for servers and proxies. */
  serve: number[];
}

/** Undefined (no pinning) on a single CPU, where there is nothing to separate. */
export function choosePinning(): Pinning | undefined {
  const cpus = allowedCpus();
  if (cpus.length < 2) return undefined;
  // The first CPU takes more of the machine's interrupts; the generator minds that less.
  return { load: [cpus[0]!], serve: cpus.slice(1) };
}

/** The command line that starts `cmd` on the role's CPUs (taskset execs, so the pid is cmd's). */
export function onCpus(pin: Pinning | undefined, role: keyof Pinning, cmd: string, args: readonly string[]): [string, string[]] {
  return pin ? ['taskset', ['-c', pin[role].join(','), cmd, ...args]] : [cmd, [...args]];
}

/** Moves every thread of a running process to the role's CPUs; new threads inherit it. */
export function pinProcess(pin: Pinning | undefined, role: keyof Pinning, pid: number): void {
  if (!pin) return;
  execFileSync('taskset', ['-a', '-p', '-c', pin[role].join(','), String(pid)], { stdio: 'ignore' });
}

export function describePinning(pin: Pinning | undefined): string {
  return pin
    ? `pinned with taskset: load generators on CPU ${pin.load.join(',')}; nginx and proxies on CPU ${pin.serve.join(',')}`
    : 'not pinned: only one CPU is available, so generator, server and proxies share it';
}
