// The proxy's whole configuration, read from MESH_PROXY_* environment
// variables in this one place into a typed shape. A bad value stops start-up
// with a message naming the variable.
import { isIP } from 'node:net';
import { loadIdentityConfig, type IdentityConfig } from './identity/config.js';
import type { LogLevel } from './log.js';
import { MeshedDestinations, MeshedDestinationsError, parseMeshedDestinations } from './transport/destinations.js';

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
  admin: ListenAddress;
  inboundMode: InboundMode;
  /** Destination ports forwarded as TCP at once, without waiting to sniff a protocol. */
  opaquePorts: ReadonlySet<number>;
  /** How long to wait for a client's first bytes before treating the stream as opaque. */
  detectTimeoutMs: number;
  /** At most this many bytes are read while detecting. */
  detectMaxBytes: number;
  connectTimeoutOutboundMs: number;
  connectTimeoutInboundMs: number;
  /** A request head must arrive within this (HAProxy's `timeout http-request`). */
  headTimeoutMs: number;
  /** Keep-alive client connections with no request in flight close after this. */
  idleTimeoutMs: number;
  logLevel: LogLevel;
  /** Workload identity (MESH_PROXY_IDENTITY_*); undefined when off. */
  identity: IdentityConfig | undefined;
  /** Destinations whose proxy must be reached over mTLS, with the identity it must prove. */
  meshedDestinations: MeshedDestinations;
  /** Inbound ports that accept only mTLS from a mesh proxy; plaintext is refused. */
  requireIdentityPorts: ReadonlySet<number>;
}

/** Server-speaks-first or preamble-less protocols: SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached. */
export const defaultOpaquePorts = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211];

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

/** "25,587,3306-3307": ports and ranges. */
function ports(env: Env, name: string, fallback: number[]): Set<number> {
  const raw = env[name];
  if (raw === undefined) return new Set(fallback);
  const out = new Set<number>();
  for (const item of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from < 1 || to > 65535 || from > to) throw new ConfigError(name, `"${item}" is not a port or port range`);
    if (to - from > 65535) throw new ConfigError(name, `"${item}" is too wide`);
    for (let p = from; p <= to; p++) out.add(p);
  }
  return out;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new ConfigError(name, `"${raw}" is not a whole number from ${min} to ${max}`);
  return n;
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
  const identity = loadIdentityConfig(env);
  needsIdentity(env, 'MESH_PROXY_MESHED_DESTINATIONS', identity);
  needsIdentity(env, 'MESH_PROXY_REQUIRE_IDENTITY_PORTS', identity);
  let meshedDestinations: MeshedDestinations;
  try {
    meshedDestinations = new MeshedDestinations(parseMeshedDestinations(env.MESH_PROXY_MESHED_DESTINATIONS ?? ''));
  } catch (e) {
    if (e instanceof MeshedDestinationsError) throw new ConfigError('MESH_PROXY_MESHED_DESTINATIONS', e.message);
    throw e;
  }
  const requireIdentityPorts = ports(env, 'MESH_PROXY_REQUIRE_IDENTITY_PORTS', []);
  const inboundPort = port(env, 'MESH_PROXY_INBOUND_PORT', 4143);
  const outboundPort = port(env, 'MESH_PROXY_OUTBOUND_PORT', 4140);
  // '::' is dual-stack: one listener takes redirected IPv4 and IPv6 alike.
  const inboundHosts = hosts(env, 'MESH_PROXY_INBOUND_ADDRESSES', ['::']);
  // REDIRECT rewrites IPv6 connections to ::1, IPv4 ones to 127.0.0.1.
  const outboundHosts = hosts(env, 'MESH_PROXY_OUTBOUND_ADDRESSES', ['127.0.0.1', '::1']);
  return {
    inbound: inboundHosts.map((host) => ({ host, port: inboundPort })),
    outbound: outboundHosts.map((host) => ({ host, port: outboundPort })),
    admin: { host: hosts(env, 'MESH_PROXY_ADMIN_ADDRESS', ['::'])[0]!, port: port(env, 'MESH_PROXY_ADMIN_PORT', 4191) },
    opaquePorts: ports(env, 'MESH_PROXY_OPAQUE_PORTS', defaultOpaquePorts),
    detectTimeoutMs: duration(env, 'MESH_PROXY_DETECT_TIMEOUT', 10_000),
    detectMaxBytes: integer(env, 'MESH_PROXY_DETECT_MAX_BYTES', 8192, 64, 65536),
    inboundMode: choice(env, 'MESH_PROXY_INBOUND_MODE', ['redirect', 'tproxy'] as const, 'redirect'),
    connectTimeoutOutboundMs: duration(env, 'MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT', 1000),
    connectTimeoutInboundMs: duration(env, 'MESH_PROXY_INBOUND_CONNECT_TIMEOUT', 100),
    headTimeoutMs: duration(env, 'MESH_PROXY_HEAD_TIMEOUT', 10_000),
    idleTimeoutMs: duration(env, 'MESH_PROXY_IDLE_TIMEOUT', 60_000),
    logLevel: choice(env, 'MESH_PROXY_LOG_LEVEL', ['error', 'warn', 'info', 'debug'] as const, 'info'),
    identity,
    meshedDestinations,
    requireIdentityPorts,
  };
}

/** Both lists mean nothing without a certificate to speak mTLS with. */
function needsIdentity(env: Env, name: string, identity: IdentityConfig | undefined): void {
  if (identity === undefined && (env[name] ?? '').trim() !== '') throw new ConfigError(name, 'needs identity: set MESH_PROXY_IDENTITY_URL (and the other MESH_PROXY_IDENTITY_* variables)');
}
