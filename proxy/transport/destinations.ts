// Which destinations run a mesh proxy, and under what identity: until
// discovery serves it, a static list (MESH_PROXY_MESHED_DESTINATIONS):
//   "198.18.0.3=api.default.serviceaccount.identity.cluster.local,10.42.0.0/16=web.default.serviceaccount..."
// An exact address wins over a subnet; among subnets the first listed wins.
import { BlockList, isIP } from 'node:net';
import type { SocketAddress } from '../../native/index.js';

export interface MeshedRule {
  /** "198.18.0.3" or "10.42.0.0/16" or "fd6d::/64". */
  network: string;
  identity: string;
}

export class MeshedDestinationsError extends Error {
  readonly code = 'MESH_PROXY_BAD_DESTINATIONS';
}

export class MeshedDestinations {
  readonly #exact = new Map<string, string>();
  readonly #subnets: { list: BlockList; family: 'ipv4' | 'ipv6'; identity: string }[] = [];

  constructor(readonly rules: readonly MeshedRule[]) {
    for (const r of rules) {
      const [address = '', prefix] = r.network.split('/');
      const family = isIP(address);
      if (prefix === undefined) {
        // Sockets report IPv6 addresses in their canonical form (lowercase, "::" compressed).
        const key = family === 6 ? canonicalIpv6(address) : address;
        if (!this.#exact.has(key)) this.#exact.set(key, r.identity);
        continue;
      }
      const list = new BlockList();
      const type = family === 6 ? 'ipv6' : 'ipv4';
      list.addSubnet(address, Number(prefix), type);
      this.#subnets.push({ list, family: type, identity: r.identity });
    }
  }

  get size(): number {
    return this.rules.length;
  }

  /** The identity the proxy at `target` must prove, or undefined: not known to be meshed. */
  identityOf(target: SocketAddress): string | undefined {
    const exact = this.#exact.get(target.address);
    if (exact !== undefined || this.#subnets.length === 0) return exact;
    const type = target.family === 6 ? 'ipv6' : 'ipv4';
    for (const s of this.#subnets) if (s.family === type && s.list.check(target.address, type)) return s.identity;
    return undefined;
  }
}

/** "FD6D:0:0::7" → "fd6d::7", the form a socket reports (the URL standard serializes IPv6 the same way). */
function canonicalIpv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Parses the variable's value; throws MeshedDestinationsError naming the bad item. */
export function parseMeshedDestinations(raw: string): MeshedRule[] {
  const rules: MeshedRule[] = [];
  for (const item of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new MeshedDestinationsError(`"${item}" is not ADDRESS[/PREFIX]=IDENTITY`);
    let network = item.slice(0, eq).trim();
    const identity = item.slice(eq + 1).trim();
    // "[fd00::1]" is accepted for IPv6, as in a URL.
    network = network.replace(/^\[([^\]]+)\]/, '$1');
    const [address = '', prefix, extra] = network.split('/');
    const family = isIP(address);
    // A zone ("%eth0") is accepted by isIP but never matches a destination.
    if (family === 0 || extra !== undefined || address.includes('%')) throw new MeshedDestinationsError(`"${item}": "${network}" is not an IP address or subnet`);
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))) {
      throw new MeshedDestinationsError(`"${item}": /${prefix} is not a prefix length for IPv${family}`);
    }
    if (identity.length > 253 || !DNS_NAME.test(identity)) throw new MeshedDestinationsError(`"${item}": "${identity}" is not an identity name (a lowercase DNS name)`);
    rules.push({ network, identity });
  }
  return rules;
}
