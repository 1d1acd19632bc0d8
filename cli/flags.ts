// Flag values shared by the mesh commands, parsed into typed values or a UsageError naming the flag.
import { isIP } from 'node:net';
import { parseGoDuration } from '../shared/duration.js';
import { UsageError } from './command.js';

/** Go's duration syntax, as Linkerd's flags take it: "24h", "87600h", "1h30m", "500ms". */
export function parseDuration(flag: string, raw: string): number {
  const ms = parseGoDuration(raw);
  if (ms === 'syntax') throw new UsageError(`${flag}: "${raw}" is not a duration (e.g. 24h, 8760h, 1h30m, 90s)`);
  if (ms === 'zero') throw new UsageError(`${flag}: must be longer than zero`);
  return ms;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "0.0.0.0:8080", "[::]:8080", ":8080" (all addresses), "127.0.0.1:0" (any free port). */
export function parseListenAddress(flag: string, raw: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  const host = m?.[1] ?? m?.[2] ?? '';
  const port = Number(m?.[3]);
  if (m === null || port > 65535 || (host !== '' && isIP(host) === 0 && host !== 'localhost')) {
    throw new UsageError(`${flag}: "${raw}" is not address:port (e.g. 0.0.0.0:8080, [::]:8080)`);
  }
  return { host: host === '' ? '::' : host, port };
}

export function parseChoice<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(`${flag}: "${raw}" is not one of ${choices.join(', ')}`);
}
