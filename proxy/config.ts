// The proxy's whole configuration, read from MESH_PROXY_* environment
// variables in this one place into a typed shape. A bad value stops start-up
// with a message naming the variable.
import { isIP } from 'node:net';
import { loadIdentityConfig, type IdentityConfig } from './identity/config.js';
import { DEFAULT_OPAQUE_PORTS, defaultTapIdentity, PROXY_DEFAULTS as D, PROXY_ENV as E, PROXY_LOG_LEVELS, INTERCEPTION_MODES, PROXY_PORTS } from '../contract/sidecar.js';
import type { LogLevel } from './log.js';
import { MAX_TIMER_MS } from './timers.js';
import { MeshedDestinations, MeshedDestinationsError, parseMeshedDestinations } from './transport/destinations.js';
import { destinationServerName } from '../controller/destination/names.js';
import { parseIdentityName } from '../ca/identity.js';

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
  /** The tap server (mTLS); it serves only when identity is on. */
  control: ListenAddress;
  /** The identity allowed to tap; undefined when identity is off. */
  tapIdentity: string | undefined;
  inboundMode: InboundMode;
  /** Destination ports forwarded as TCP at once, without waiting to sniff a protocol. */
  opaquePorts: ReadonlySet<number>;
  /** How long to wait for a client's first bytes before treating the stream as opaque. */
  detectTimeoutMs: number;
  /** At most this many bytes are read while detecting. */
  detectMaxBytes: number;
  /** A client silent this long has its upstream opened, to hear a server that speaks first; 0: off. */
  serverFirstWindowMs: number;
  /** At most this many destinations are remembered as server-speaks-first ... */
  serverFirstMemory: number;
  /** ... each for this long after it was last seen speaking first. */
  serverFirstTtlMs: number;
  connectTimeoutOutboundMs: number;
  connectTimeoutInboundMs: number;
  /** A request head must arrive within this (HAProxy's `timeout http-request`). */
  headTimeoutMs: number;
  /** Keep-alive client connections with no request in flight close after this. */
  idleTimeoutMs: number;
  /** RSS over which memory is reclaimed once load falls, traffic or not (bytes); 0: only when quiet. */
  memorySoftLimitBytes: number;
  logLevel: LogLevel;
  /** Workload identity (MESH_PROXY_IDENTITY_*); undefined when off. */
  identity: IdentityConfig | undefined;
  /** Destinations whose proxy must be reached over mTLS, with the identity it must prove. */
  meshedDestinations: MeshedDestinations;
  /** Inbound ports that accept only mTLS from a mesh proxy; plaintext is refused. */
  requireIdentityPorts: ReadonlySet<number>;
  /** Discovery through the destination service; undefined when MESH_PROXY_DESTINATION_URL is unset. */
  discovery: DiscoveryConfig | undefined;
}

export interface DiscoveryConfig {
  url: string;
  serverName: string;
  /** Verifies the destination service's certificate: the identity trust anchors. */
  trustAnchorsPem: string;
  namespace: string | undefined;
  waitMs: number;
  idleMs: number;
}

/** Server-speaks-first or preamble-less protocols (the contract's list). */
export const defaultOpaquePorts: number[] = [...DEFAULT_OPAQUE_PORTS];

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

/**
 * A duration in ms, within what the proxy's timers can do: at least 1 ms (a 0 s
 * connect or head timeout would fail every connection) unless `zeroMeans` says
 * what 0 does, and at most ~24.8 days (longer would fire after 1 ms).
 */
function duration(env: Env, name: string, fallbackMs: number, zeroMeans?: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackMs;
  const ms = parseDuration(name, raw);
  if (ms === 0 && zeroMeans === undefined) throw new ConfigError(name, `"${raw}" is no time at all; give a duration above 0`);
  if (ms > MAX_TIMER_MS) throw new ConfigError(name, `"${raw}" is longer than a timer can wait (24.8 days)`);
  return ms;
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
  needsIdentity(env, E.meshedDestinations, identity);
  needsIdentity(env, E.requireIdentityPorts, identity);
  let meshedDestinations: MeshedDestinations;
  try {
    meshedDestinations = new MeshedDestinations(parseMeshedDestinations(env[E.meshedDestinations] ?? ''));
  } catch (e) {
    if (e instanceof MeshedDestinationsError) throw new ConfigError(E.meshedDestinations, e.message);
    throw e;
  }
  const requireIdentityPorts = ports(env, E.requireIdentityPorts, []);
  const inboundPort = port(env, E.inboundPort, PROXY_PORTS.inbound);
  const outboundPort = port(env, E.outboundPort, PROXY_PORTS.outbound);
  const inboundHosts = hosts(env, E.inboundAddresses, [...D.inboundAddresses]);
  const outboundHosts = hosts(env, E.outboundAddresses, [...D.outboundAddresses]);
  const adminPort = port(env, E.adminPort, PROXY_PORTS.admin);
  const controlPort = port(env, E.controlPort, PROXY_PORTS.control);
  // Two listeners on one port: the second fails at start, after the first already serves.
  const named: [string, number][] = [[E.inboundPort, inboundPort], [E.outboundPort, outboundPort], [E.adminPort, adminPort], [E.controlPort, controlPort]];
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (named[i]![1] === named[j]![1]) throw new ConfigError(named[j]![0], `port ${named[j]![1]} is ${named[i]![0]}'s too; each listener needs its own`);
    }
  }
  return {
    inbound: inboundHosts.map((host) => ({ host, port: inboundPort })),
    outbound: outboundHosts.map((host) => ({ host, port: outboundPort })),
    admin: { host: hosts(env, E.adminAddress, [D.adminAddress])[0]!, port: adminPort },
    control: { host: hosts(env, E.adminAddress, [D.adminAddress])[0]!, port: controlPort },
    tapIdentity: identity === undefined ? undefined : (env[E.tapIdentity] ?? '').trim() || defaultTapIdentity(identity.name),
    opaquePorts: ports(env, E.opaquePorts, defaultOpaquePorts),
    detectTimeoutMs: duration(env, E.detectTimeout, D.detectTimeoutMs),
    detectMaxBytes: integer(env, E.detectMaxBytes, D.detectMaxBytes, 64, 65536),
    serverFirstWindowMs: duration(env, E.serverFirstWindow, D.serverFirstWindowMs, 'never open an upstream early'),
    serverFirstMemory: integer(env, E.serverFirstMemory, D.serverFirstMemory, 0, 1_000_000),
    serverFirstTtlMs: duration(env, E.serverFirstTtl, D.serverFirstTtlMs, 'forget at once'),
    inboundMode: choice(env, E.inboundMode, INTERCEPTION_MODES, D.inboundMode),
    connectTimeoutOutboundMs: duration(env, E.outboundConnectTimeout, D.outboundConnectTimeoutMs),
    connectTimeoutInboundMs: duration(env, E.inboundConnectTimeout, D.inboundConnectTimeoutMs),
    headTimeoutMs: duration(env, E.headTimeout, D.headTimeoutMs),
    idleTimeoutMs: duration(env, E.idleTimeout, D.idleTimeoutMs),
    memorySoftLimitBytes: integer(env, E.memorySoftLimit, D.memorySoftLimitMiB, 0, 1_048_576) * 1048576,
    logLevel: choice(env, E.logLevel, PROXY_LOG_LEVELS, D.logLevel),
    identity,
    meshedDestinations,
    requireIdentityPorts,
    discovery: discoveryConfig(env, identity),
  };
}

function discoveryConfig(env: Env, identity: IdentityConfig | undefined): DiscoveryConfig | undefined {
  const url = env[E.destinationUrl]?.trim() ?? '';
  if (url === '') return undefined;
  // The destination service is verified against the same trust anchors as the mesh's peers.
  if (identity === undefined) throw new ConfigError(E.destinationUrl, 'needs identity (its trust anchors verify the destination service): set MESH_PROXY_IDENTITY_URL and the other MESH_PROXY_IDENTITY_* variables');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(E.destinationUrl, `"${url}" is not a URL (https://host:port)`);
  }
  if (parsed.protocol !== 'https:') throw new ConfigError(E.destinationUrl, `"${url}" is not an https:// URL`);
  const namespace = env[E.namespace]?.trim();
  if (namespace !== undefined && namespace !== '' && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(namespace)) throw new ConfigError(E.namespace, `"${namespace}" is not a namespace name`);
  return {
    url,
    serverName: env[E.destinationServerName]?.trim() || destinationServerName(parseIdentityName(identity.name).trustDomain),
    trustAnchorsPem: identity.trustAnchorsPem,
    namespace: namespace === '' ? undefined : namespace,
    waitMs: duration(env, E.discoveryWait, D.discoveryWaitMs),
    idleMs: duration(env, E.discoveryIdle, D.discoveryIdleMs),
  };
}

/** Both lists mean nothing without a certificate to speak mTLS with. */
function needsIdentity(env: Env, name: string, identity: IdentityConfig | undefined): void {
  if (identity === undefined && (env[name] ?? '').trim() !== '') throw new ConfigError(name, 'needs identity: set MESH_PROXY_IDENTITY_URL (and the other MESH_PROXY_IDENTITY_* variables)');
}
