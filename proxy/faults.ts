// A bug in the handling of one connection must cost that connection, not every
// connection of the pod. Node ends the process on an exception nobody caught
// (a throw from a socket's event handler, a rejection nobody handled): for a
// sidecar that is every stream of the workload cut at once, and a restart. As
// Linkerd's proxy does with a panicking task, the error is logged with its
// stack, counted (proxy_internal_errors_total), and the proxy goes on: the
// state of that one connection may be lost, the others' is not shared with it.
// Errors that keep coming mean something is broken beyond one connection
// (state shared by all of them): past `maxPerMinute` the proxy exits with
// EX_SOFTWARE (70) and lets its supervisor start a fresh one.
import { performance } from 'node:perf_hooks';
import type { Log } from '../shared/log.js';

export const EX_SOFTWARE = 70;

export interface FaultGuardOptions {
  /** More than this many in 60 s: exit. Default 10. */
  maxPerMinute?: number;
  count(kind: 'exception' | 'rejection'): void;
  now?: () => number;
  exit?: (code: number) => void;
}

/** The handler for both events; exported so that tests drive it without a process. */
export function faultHandler(log: Log, o: FaultGuardOptions): (err: unknown, kind: 'exception' | 'rejection') => void {
  const max = o.maxPerMinute ?? 10;
  const now = o.now ?? (() => performance.now());
  const exit = o.exit ?? ((code: number) => process.exit(code));
  const recent: number[] = [];
  return (err, kind) => {
    o.count(kind);
    const e = err instanceof Error ? err : new Error(String(err));
    const stack = (e.stack ?? '').split('\n').slice(1, 6).map((l) => l.trim()).join(' | ');
    log.error('internal error: a bug cost the connection it happened on; the proxy goes on', { code: 'MESH_INTERNAL', kind, reason: e.message, stack });
    const t = now();
    recent.push(t);
    while (recent.length > 0 && recent[0]! <= t - 60_000) recent.shift();
    if (recent.length > max) {
      log.error('internal errors keep coming: exiting for a restart', { code: 'MESH_INTERNAL', errors_last_minute: recent.length });
      exit(EX_SOFTWARE);
    }
  };
}

/** Installs the handler on this process. */
export function guardFaults(log: Log, o: FaultGuardOptions): void {
  const handle = faultHandler(log, o);
  process.on('uncaughtException', (err) => handle(err, 'exception'));
  process.on('unhandledRejection', (reason) => handle(reason, 'rejection'));
}
