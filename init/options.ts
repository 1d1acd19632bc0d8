// mesh-init's options: one typed shape, the defaults Linkerd users know, and the
// parsers that turn flag text into it. Nothing here touches the system.
import { isIP } from 'node:net';
import { PROXY_OWN_PORTS, PROXY_PORTS, PROXY_UID, TPROXY_DEFAULTS } from '../contract/sidecar.js';
import { InitError } from './errors.js';

export type InterceptMode = 'redirect' | 'tproxy';
export type IptablesMode = 'auto' | 'nft' | 'legacy';
export type Family = 4 | 6;

/** An inclusive port range; a single port has from === to. */
export interface PortRange {
  from: number;
  to: number;
}

export interface Cidr {
  family: Family;
  /** As given, e.g. 10.0.0.0/8 or fd00::/8. */
  text: string;
}

export interface InitOptions {
  mode: InterceptMode;
  inboundPort: number;
  outboundPort: number;
  proxyUid: number;
  proxyGid?: number;
  /** Ports of the proxy itself (admin, tap) that inbound traffic reaches directly. */
  proxyPorts: PortRange[];
  /** Empty: redirect every inbound port. */
  inboundPorts: PortRange[];
  skipInboundPorts: PortRange[];
  skipOutboundPorts: PortRange[];
  skipSubnets: Cidr[];
  ipv4: boolean;
  ipv6: boolean;
  iptablesMode: IptablesMode;
  /** TPROXY only: packet mark and the routing table that delivers marked packets locally. */
  tproxyMark: number;
  routeTable: number;
}

export const defaults: InitOptions = {
  mode: 'redirect',
  inboundPort: PROXY_PORTS.inbound,
  outboundPort: PROXY_PORTS.outbound,
  proxyUid: PROXY_UID,
  proxyPorts: [{ ...PROXY_OWN_PORTS }],
  inboundPorts: [],
  skipInboundPorts: [],
  skipOutboundPorts: [],
  skipSubnets: [],
  ipv4: true,
  ipv6: true,
  iptablesMode: 'auto',
  tproxyMark: TPROXY_DEFAULTS.mark,
  routeTable: TPROXY_DEFAULTS.routeTable,
};

function parseIntStrict(text: string): number | undefined {
  return /^\d{1,10}$/.test(text) ? Number(text) : undefined;
}

export function parsePort(text: string, flag: string): number {
  const n = parseIntStrict(text.trim());
  if (n === undefined || n < 1 || n > 65535) {
    throw new InitError('MESH_INIT_BAD_PORT', `${flag}: "${text}" is not a port (1-65535)`);
  }
  return n;
}

/** "80,443,8000-8100" → ranges. An empty string is an empty list. */
export function parsePortList(text: string, flag: string): PortRange[] {
  const ranges: PortRange[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const dash = item.indexOf('-');
    if (dash < 0) {
      const p = parsePort(item, flag);
      ranges.push({ from: p, to: p });
      continue;
    }
    const from = parsePort(item.slice(0, dash), flag);
    const to = parsePort(item.slice(dash + 1), flag);
    if (from > to) {
      throw new InitError('MESH_INIT_BAD_PORT', `${flag}: range "${item}" runs backwards`);
    }
    ranges.push({ from, to });
  }
  return ranges;
}

export function parseCidr(text: string, flag: string): Cidr {
  const item = text.trim();
  const slash = item.indexOf('/');
  const address = slash < 0 ? item : item.slice(0, slash);
  const family = isIP(address);
  const bits = slash < 0 ? undefined : parseIntStrict(item.slice(slash + 1));
  const max = family === 6 ? 128 : 32;
  if (family === 0 || (slash >= 0 && (bits === undefined || bits > max))) {
    throw new InitError('MESH_INIT_BAD_CIDR', `${flag}: "${text}" is not an IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8)`);
  }
  return { family: family as Family, text: slash < 0 ? `${address}/${max}` : item };
}

export function parseCidrList(text: string, flag: string): Cidr[] {
  return text
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => parseCidr(s, flag));
}

export function parseUid(text: string, flag: string): number {
  const n = parseIntStrict(text.trim());
  if (n === undefined || n > 0xfffffffe) {
    throw new InitError('MESH_INIT_BAD_FLAG', `${flag}: "${text}" is not a numeric user or group id`);
  }
  return n;
}

export function parseMark(text: string, flag: string): number {
  const t = text.trim();
  const n = /^0x[0-9a-f]{1,8}$/i.test(t) ? Number.parseInt(t, 16) : parseIntStrict(t);
  if (n === undefined || n < 1 || n > 0xffffffff) {
    throw new InitError('MESH_INIT_BAD_FLAG', `${flag}: "${text}" is not a non-zero 32-bit mark`);
  }
  return n;
}

export function parseTable(text: string, flag: string): number {
  const n = parseIntStrict(text.trim());
  // 253-255 are the kernel's default, main and local tables: never ours to flush.
  if (n === undefined || n < 1 || n > 0xffffffff || (n >= 253 && n <= 255)) {
    throw new InitError('MESH_INIT_BAD_FLAG', `${flag}: "${text}" is not a usable routing table id (1-252, 256+)`);
  }
  return n;
}

export function parseChoice<T extends string>(text: string, choices: readonly T[], flag: string): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new InitError('MESH_INIT_BAD_FLAG', `${flag}: "${text}" is not one of ${choices.join(', ')}`);
}

export function formatPorts(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
}
