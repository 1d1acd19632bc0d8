// What a source knows, in one shape both sources build: services (with their
// host names, virtual addresses and per-port endpoint sets) and workloads by
// address. Resolving an authority against it is a pure function, so a source
// only has to keep its catalog current and say when it changed.
import type { AuthoritySettings, Endpoint } from '../../contract/destination.js';
import type { Authority } from './authority.js';
import type { ServiceSettings } from './settings.js';

export interface CatalogService {
  name: string;
  namespace: string;
  /** Further names it answers to (file source: `api.mesh.local`). */
  hosts: readonly string[];
  /** Addresses apps dial for it (a ClusterIP); a lookup by `vip:port` answers the service. */
  vips: readonly string[];
  settings: ServiceSettings;
  /** Service port → the endpoints behind it, each with its own (target) port. */
  ports: ReadonlyMap<number, readonly Endpoint[]>;
}

/** A single pod or endpoint, answered for a lookup by its own address. */
export interface Workload extends Omit<Endpoint, 'port'> {
  /** The ports it serves, when known (file source); a pod answers for any port. */
  ports?: readonly number[];
}

export interface Catalog {
  /** Keyed `namespace/name`. */
  services: ReadonlyMap<string, CatalogService>;
  /** Host name → service key. */
  hosts: ReadonlyMap<string, string>;
  /** Virtual address → service key. */
  vips: ReadonlyMap<string, string>;
  workloads: ReadonlyMap<string, Workload>;
}

export type Resolution =
  | { kind: 'found'; settings: AuthoritySettings; endpoints: readonly Endpoint[] }
  /** This source has no answer; `reason` says what it knows instead (shown when no source answers). */
  | { kind: 'unknown'; reason: string };

export const serviceKey = (namespace: string, name: string): string => `${namespace}/${name}`;

export function emptyCatalog(): Catalog {
  return { services: new Map(), hosts: new Map(), vips: new Map(), workloads: new Map() };
}

/** Builds the two indexes from the services; a later service does not take a name an earlier one holds. */
export function indexCatalog(services: readonly CatalogService[], workloads: ReadonlyMap<string, Workload>): Catalog {
  const byKey = new Map<string, CatalogService>();
  const hosts = new Map<string, string>();
  const vips = new Map<string, string>();
  for (const s of services) {
    const key = serviceKey(s.namespace, s.name);
    byKey.set(key, s);
    for (const h of s.hosts) if (!hosts.has(h)) hosts.set(h.toLowerCase(), key);
    for (const v of s.vips) if (!vips.has(v)) vips.set(v.toLowerCase(), key);
  }
  return { services: byKey, hosts, vips, workloads };
}

function serviceAnswer(s: CatalogService, port: number): Resolution {
  const endpoints = s.ports.get(port);
  if (endpoints === undefined) return { kind: 'unknown', reason: `service ${s.namespace}/${s.name} has no port ${port}` };
  const settings: AuthoritySettings = {
    service: { name: s.name, namespace: s.namespace },
    // The Service's list names its own ports; a list naming the target port is read the same way, as Linkerd does.
    opaque: s.settings.opaquePorts.includes(port) || endpoints.some((e) => s.settings.opaquePorts.includes(e.port)),
  };
  if (s.settings.timeoutMs !== undefined) settings.timeoutMs = s.settings.timeoutMs;
  if (s.settings.retryHttp !== undefined) settings.retryHttp = s.settings.retryHttp;
  if (s.settings.retryGrpc !== undefined) settings.retryGrpc = s.settings.retryGrpc;
  if (s.settings.retryLimit !== undefined) settings.retryLimit = s.settings.retryLimit;
  return { kind: 'found', settings, endpoints };
}

export function resolveIn(catalog: Catalog, a: Authority): Resolution {
  if (a.address !== undefined) {
    const vip = catalog.vips.get(a.address);
    if (vip !== undefined) return serviceAnswer(catalog.services.get(vip)!, a.port);
    const w = catalog.workloads.get(a.address);
    if (w === undefined) return { kind: 'unknown', reason: `no service or workload has address ${a.address}` };
    if (w.ports !== undefined && !w.ports.includes(a.port)) return { kind: 'unknown', reason: `${w.name ?? a.address} does not serve port ${a.port}` };
    const { ports: _ports, ...endpoint } = w;
    return { kind: 'found', settings: { opaque: (w.opaquePorts ?? []).includes(a.port) }, endpoints: [{ ...endpoint, port: a.port }] };
  }
  // A declared host name wins over the service a short name would complete to: it was written on purpose.
  const byHost = catalog.hosts.get(a.host);
  if (byHost !== undefined) return serviceAnswer(catalog.services.get(byHost)!, a.port);
  if (a.service !== undefined) {
    const s = catalog.services.get(serviceKey(a.service.namespace, a.service.name));
    if (s !== undefined) return serviceAnswer(s, a.port);
    return { kind: 'unknown', reason: `no service ${a.service.namespace}/${a.service.name}` };
  }
  return { kind: 'unknown', reason: `no service is named ${a.host}` };
}
