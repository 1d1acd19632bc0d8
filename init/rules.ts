// The rules mesh-init wants, as data, derived from options alone. A pure
// function: unit tests cover every option here without root or a kernel.
import type { Family, InitOptions, PortRange } from './options.js';

export type Table = 'nat' | 'mangle';
export type BuiltinChain = 'PREROUTING' | 'OUTPUT';

/** Every chain mesh-init owns starts with this; cleanup finds them by it. */
export const chainPrefix = 'MESH_';

export const chains = {
  inbound: 'MESH_INBOUND',
  outbound: 'MESH_OUTBOUND',
  divert: 'MESH_DIVERT',
} as const;

export interface ChainRules {
  table: Table;
  chain: string;
  /** Rule specs, without the leading "-A CHAIN". */
  rules: string[];
}

export interface Jump {
  table: Table;
  from: BuiltinChain;
  to: string;
  spec: string;
}

export interface DesiredRules {
  family: Family;
  chains: ChainRules[];
  jumps: Jump[];
}

const comment = (text: string): string => `-m comment --comment "mesh-init: ${text}"`;

/** multiport takes at most 15 ports per rule, a range counting as two. */
export function multiportChunks(ranges: readonly PortRange[]): string[] {
  const chunks: string[] = [];
  let items: string[] = [];
  let weight = 0;
  for (const r of ranges) {
    const w = r.from === r.to ? 1 : 2;
    if (weight + w > 15) {
      chunks.push(items.join(','));
      items = [];
      weight = 0;
    }
    items.push(r.from === r.to ? `${r.from}` : `${r.from}:${r.to}`);
    weight += w;
  }
  if (items.length > 0) chunks.push(items.join(','));
  return chunks;
}

function portReturns(ranges: readonly PortRange[], why: string): string[] {
  return multiportChunks(ranges).map((ports) => `-p tcp -m multiport --dports ${ports} ${comment(why)} -j RETURN`);
}

function inboundSkips(o: InitOptions, family: Family): string[] {
  const subnets = o.skipSubnets.filter((c) => c.family === family);
  return [
    `-i lo ${comment('loopback is never intercepted')} -j RETURN`,
    ...portReturns(o.proxyPorts, "proxy ports are reached directly"),
    ...portReturns(o.skipInboundPorts, 'skip-inbound-ports'),
    ...subnets.map((c) => `-s ${c.text} ${comment('skip-subnets')} -j RETURN`),
  ];
}

/** The final inbound action, for every port or only the listed ones. */
function inboundCapture(o: InitOptions, target: string, why: string): string[] {
  if (o.inboundPorts.length === 0) return [`-p tcp ${comment(why)} -j ${target}`];
  return multiportChunks(o.inboundPorts).map((ports) => `-p tcp -m multiport --dports ${ports} ${comment(why)} -j ${target}`);
}

function outboundRules(o: InitOptions, family: Family): string[] {
  const subnets = o.skipSubnets.filter((c) => c.family === family);
  return [
    `-m owner --uid-owner ${o.proxyUid} ${comment("proxy traffic is not intercepted")} -j RETURN`,
    ...(o.proxyGid === undefined
      ? []
      : [`-m owner --gid-owner ${o.proxyGid} ${comment("proxy group traffic is not intercepted")} -j RETURN`]),
    `-o lo ${comment('loopback is never intercepted')} -j RETURN`,
    ...portReturns(o.skipOutboundPorts, 'skip-outbound-ports'),
    ...subnets.map((c) => `-d ${c.text} ${comment('skip-subnets')} -j RETURN`),
    `-p tcp ${comment(`redirect outbound TCP to proxy port ${o.outboundPort}`)} -j REDIRECT --to-ports ${o.outboundPort}`,
  ];
}

function jump(table: Table, from: BuiltinChain, to: string, why: string): Jump {
  return { table, from, to, spec: `-p tcp ${comment(why)} -j ${to}` };
}

export function desiredRules(o: InitOptions, family: Family): DesiredRules {
  const outbound: ChainRules = { table: 'nat', chain: chains.outbound, rules: outboundRules(o, family) };
  const outboundJump = jump('nat', 'OUTPUT', chains.outbound, 'outbound');

  if (o.mode === 'redirect') {
    const inbound: ChainRules = {
      table: 'nat',
      chain: chains.inbound,
      rules: [
        ...inboundSkips(o, family),
        ...inboundCapture(o, `REDIRECT --to-ports ${o.inboundPort}`, `redirect inbound TCP to proxy port ${o.inboundPort}`),
      ],
    };
    return {
      family,
      chains: [inbound, outbound],
      jumps: [jump('nat', 'PREROUTING', chains.inbound, 'inbound'), outboundJump],
    };
  }

  // TPROXY: packets keep their addresses; the mark plus policy routing deliver
  // them to the transparent listener. Packets of established connections are
  // only re-marked and accepted: the TPROXY target drops a packet whose
  // established socket is not transparent, which would kill the replies to the
  // proxy's (and skipped apps') own outbound connections.
  const anyAddress = family === 4 ? '0.0.0.0' : '::';
  const mark = `0x${o.tproxyMark.toString(16)}/0xffffffff`;
  const divert: ChainRules = {
    table: 'mangle',
    chain: chains.divert,
    rules: [`-j MARK --set-xmark ${mark}`, '-j ACCEPT'],
  };
  const inbound: ChainRules = {
    table: 'mangle',
    chain: chains.inbound,
    rules: [
      ...inboundSkips(o, family),
      `-p tcp -m conntrack --ctstate RELATED,ESTABLISHED ${comment('established connections are only re-marked')} -j ${chains.divert}`,
      ...inboundCapture(
        o,
        `TPROXY --on-port ${o.inboundPort} --on-ip ${anyAddress} --tproxy-mark ${mark}`,
        `tproxy inbound TCP to proxy port ${o.inboundPort}`,
      ),
    ],
  };
  return {
    family,
    chains: [divert, inbound, outbound],
    jumps: [jump('mangle', 'PREROUTING', chains.inbound, 'inbound'), outboundJump],
  };
}

/** Nothing: what cleanup reconciles towards. */
export function noRules(family: Family): DesiredRules {
  return { family, chains: [], jumps: [] };
}
