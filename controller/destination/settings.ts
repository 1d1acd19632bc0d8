// The per-service settings, as the Service annotations (SERVICE_ANNOTATIONS)
// and the file source write them: one reader, so that `timeout: 2s` means the
// same in a YAML file and in `config.mesh.io/timeout: 2s`. A bad value is a
// problem named with its key; the caller decides whether that refuses a file
// (file source) or is logged and ignored (an annotation someone else wrote).
import type { RetryHttpOn } from '../../contract/destination.js';
import { parseGoDuration } from '../../shared/duration.js';

export interface ServiceSettings {
  opaquePorts: readonly number[];
  timeoutMs?: number;
  retryHttp?: RetryHttpOn;
  retryGrpc?: readonly string[];
  retryLimit?: number;
}

export const SETTING_KEYS = ['opaque-ports', 'timeout', 'retry-http', 'retry-grpc', 'retry-limit'] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

/** Go's duration syntax, as the annotations take it: "2s", "500ms", "1m30s". */
export function parseDurationMs(raw: string): number {
  const ms = parseGoDuration(raw);
  if (ms === 'syntax') throw new Error(`"${raw}" is not a duration (e.g. 2s, 500ms, 1m30s)`);
  if (ms === 'zero') throw new Error(`"${raw}" must be longer than zero`);
  return ms;
}

/**
 * "8080,9000-9002" → [8080, 9000, 9001, 9002]. Names (`mysql`) resolve through
 * `named` (a pod's container ports); a name that does not is an error.
 */
export function parsePorts(raw: string, named: ReadonlyMap<string, number> = new Map()): number[] {
  const ports = new Set<number>();
  for (const item of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const range = /^(\d+)-(\d+)$/.exec(item);
    if (range !== null) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      if (!(from >= 1 && to <= 65535 && from <= to)) throw new Error(`"${item}" is not a port range`);
      // A range of the whole port space is legal and 64k numbers is still small.
      for (let p = from; p <= to; p++) ports.add(p);
    } else if (/^\d+$/.test(item)) {
      const p = Number(item);
      if (p < 1 || p > 65535) throw new Error(`port ${item} is out of range`);
      ports.add(p);
    } else {
      const p = named.get(item);
      if (p === undefined) throw new Error(`"${item}" is neither a port number, a range, nor a named port`);
      ports.add(p);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

function parseRetryHttp(raw: string): RetryHttpOn {
  const text = raw.trim().toLowerCase();
  if (text === '5xx' || text === 'gateway-error') return text;
  const codes = text.split(',').map((s) => s.trim());
  if (codes.length === 0 || !codes.every((c) => /^[1-5]\d\d$/.test(c))) {
    throw new Error(`"${raw}" is not 5xx, gateway-error or a list of status codes (e.g. 500,503)`);
  }
  return codes.map(Number);
}

const GRPC_CODES = new Set([
  'cancelled', 'unknown', 'invalid-argument', 'deadline-exceeded', 'not-found', 'already-exists', 'permission-denied', 'resource-exhausted',
  'failed-precondition', 'aborted', 'out-of-range', 'unimplemented', 'internal', 'unavailable', 'data-loss', 'unauthenticated',
]);

function parseRetryGrpc(raw: string): string[] {
  const codes = raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  for (const c of codes) {
    const n = Number(c);
    if (!(GRPC_CODES.has(c) || (/^\d+$/.test(c) && n >= 1 && n <= 16))) throw new Error(`"${c}" is not a gRPC status (a name such as unavailable, or 1..16)`);
  }
  if (codes.length === 0) throw new Error('empty list of gRPC statuses');
  return codes;
}

function parseRetryLimit(raw: string): number {
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n > 100) throw new Error(`"${raw}" is not a retry count (0..100)`);
  return n;
}

/** Reads whichever keys are present; each bad one lands in `problems` and is left out. */
export function readSettings(get: (key: SettingKey) => string | undefined): { settings: ServiceSettings; problems: Array<{ key: SettingKey; message: string }> } {
  const problems: Array<{ key: SettingKey; message: string }> = [];
  const settings: { -readonly [K in keyof ServiceSettings]: ServiceSettings[K] } = { opaquePorts: [] };
  const read = <T>(key: SettingKey, parse: (raw: string) => T, set: (v: T) => void): void => {
    const raw = get(key);
    if (raw === undefined) return;
    try {
      set(parse(raw));
    } catch (e) {
      problems.push({ key, message: (e as Error).message });
    }
  };
  read('opaque-ports', (r) => parsePorts(r), (v) => (settings.opaquePorts = v));
  read('timeout', parseDurationMs, (v) => (settings.timeoutMs = v));
  read('retry-http', parseRetryHttp, (v) => (settings.retryHttp = v));
  read('retry-grpc', parseRetryGrpc, (v) => (settings.retryGrpc = v));
  read('retry-limit', parseRetryLimit, (v) => (settings.retryLimit = v));
  return { settings, problems };
}
