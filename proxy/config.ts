// The proxy's whole configuration, read from MESH_PROXY_* environment
// variables in this one place into a typed shape. A bad value stops start-up
// with a message naming the variable.
import { isIP } from 'node:net';
import type { LogLevel } from './log.js';

export type InboundMode = 'redirect' | 'tproxy';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ProxyConfig {
  /** Where intercepted inbound connections land (all addresses: they arrive for the pod's IPs). */
  inbound: ListenAddress[];
  /** Where the app's intercepted outbound connections land (loopback only). */
  outbound: ListenAddress[];
  inboundMode: InboundMode;
  connectTimeoutOutboundMs: number;
  connectTimeoutInboundMs: number;
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  readonly code = 'MESH_PROXY_BAD_CONFIG';
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new ConfigError(name, `"${raw}" is not a port (1-65535)`);
  return n;
}

/** "10s", "100ms", "1m", or a bare number of milliseconds. */
export function parseDuration(name: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new ConfigError(name, `"${raw}" is not a duration (e.g. 100ms, 10s, 1m)`);
  const scale = m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1;
  return Math.round(Number(m[1]) * scale);
}

function duration(env: Env, name: string, fallbackMs: number): number {
  const raw = env[name];
  return raw === undefined || raw === '' ? fallbackMs : parseDuration(name, raw);
}

function hosts(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const list = raw.split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (const h of list) if (isIP(h) === 0) throw new ConfigError(name, `"${h}" is not an IP address`);
  return list;
}

function choice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new ConfigError(name, `"${raw}" is not one of ${choices.join(', ')}`);
}

export function loadConfig(env: Env = process.env): ProxyConfig {
  const inboundPort = port(env, 'MESH_PROXY_INBOUND_PORT', 4143);
  const outboundPort = port(env, 'MESH_PROXY_OUTBOUND_PORT', 4140);
  // '::' is dual-stack: one listener takes redirected IPv4 and IPv6 alike.
  const inboundHosts = hosts(env, 'MESH_PROXY_INBOUND_ADDRESSES', ['::']);
  // REDIRECT rewrites IPv6 connections to ::1, IPv4 ones to 127.0.0.1.
  const outboundHosts = hosts(env, 'MESH_PROXY_OUTBOUND_ADDRESSES', ['127.0.0.1', '::1']);
  return {
    inbound: inboundHosts.map((host) => ({ host, port: inboundPort })),
    outbound: outboundHosts.map((host) => ({ host, port: outboundPort })),
    inboundMode: choice(env, 'MESH_PROXY_INBOUND_MODE', ['redirect', 'tproxy'] as const, 'redirect'),
    connectTimeoutOutboundMs: duration(env, 'MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT', 1000),
    connectTimeoutInboundMs: duration(env, 'MESH_PROXY_INBOUND_CONNECT_TIMEOUT', 100),
    logLevel: choice(env, 'MESH_PROXY_LOG_LEVEL', ['error', 'warn', 'info', 'debug'] as const, 'info'),
  };
}
