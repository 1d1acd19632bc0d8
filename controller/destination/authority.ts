// What a proxy asks for, read once into a typed target. A proxy sees whatever
// host the app dialled: a Service's full name, a short name a pod's DNS search
// path would complete (`web:8080`, `web.emojivoto:8080`), a host name only the
// file source knows, or an address. Short names are completed with the asking
// proxy's namespace and the cluster domain, as resolv.conf's search list would.
import { isIP } from 'node:net';
import { ApiError } from '../../shared/api.js';

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export interface Authority {
  /** As asked, echoed in every answer so the proxy can match it. */
  raw: string;
  /** Lower case, no trailing dot, no brackets. */
  host: string;
  port: number;
  /** The host is an IP address (a ClusterIP, a pod, an endpoint). */
  address?: string;
  /** The Service the name would be in a cluster. */
  service?: { name: string; namespace: string };
}

export const malformedAuthority = (raw: string, why: string): ApiError =>
  new ApiError(400, 'MESH_DESTINATION_AUTHORITY', `authority ${JSON.stringify(raw)}: ${why}`);

// RFC 1123 label, as Kubernetes names Services and namespaces.
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function parseAuthority(raw: string, o: { contextNamespace?: string; clusterDomain?: string } = {}): Authority {
  const text = raw.trim();
  const m = /^(?:\[([0-9a-fA-F:.%]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw malformedAuthority(raw, 'not host:port, [v6]:port or address:port');
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw malformedAuthority(raw, `port ${port} is out of range`);
  if (m[1] !== undefined) {
    if (isIP(m[1]) !== 6) throw malformedAuthority(raw, `${m[1]} is not an IPv6 address`);
    return { raw, host: m[1].toLowerCase(), port, address: m[1].toLowerCase() };
  }
  const host = m[2]!.toLowerCase().replace(/\.$/, '');
  if (isIP(host) === 4) return { raw, host, port, address: host };
  if (isIP(host) === 6) throw malformedAuthority(raw, 'an IPv6 address needs brackets: [v6]:port');
  const labels = host.split('.');
  if (labels.some((l) => l === '')) throw malformedAuthority(raw, `${host} has an empty label`);
  return { raw, host, port, service: serviceOf(labels, o.contextNamespace, o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN) };
}

/** The Service a name denotes, if it has the shape of one. */
function serviceOf(labels: string[], contextNamespace: string | undefined, clusterDomain: string): Authority['service'] {
  const domain = clusterDomain.toLowerCase().split('.');
  const suffix = ['svc', ...domain];
  const endsWith = (tail: string[]): boolean => labels.length >= tail.length && tail.every((l, i) => labels[labels.length - tail.length + i] === l);
  let parts: string[];
  if (endsWith(suffix)) parts = labels.slice(0, labels.length - suffix.length);
  else if (endsWith(['svc'])) parts = labels.slice(0, -1);
  else if (labels.length <= 2) parts = labels;
  else return undefined;
  if (parts.length === 1 && contextNamespace !== undefined) parts = [parts[0]!, contextNamespace];
  if (parts.length !== 2 || !parts.every((l) => LABEL.test(l))) return undefined;
  return { name: parts[0]!, namespace: parts[1]! };
}

/** `name.ns.svc.cluster.local:port`, for tables and logs. */
export function serviceAuthority(name: string, namespace: string, port: number, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string {
  return `${name}.${namespace}.svc.${clusterDomain}:${port}`;
}

export function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
