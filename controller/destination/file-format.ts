// The file source's format (README.md here documents it): YAML read node by
// node, so that every refusal names the line it is about. Unknown keys are
// refused too: a misspelt `enpoints:` silently meaning "no endpoints" would
// send traffic nowhere without a word.
import { isIP } from 'node:net';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from 'yaml';
import type { Endpoint } from '../../contract/destination.js';
import { indexCatalog, type Catalog, type CatalogService, type Workload } from './catalog.js';
import { parsePorts, readSettings, SETTING_KEYS, type SettingKey } from './settings.js';

/** A file that cannot be taken: where and why. */
export class FileSourceError extends Error {
  readonly code = 'MESH_DESTINATION_FILE';
  constructor(readonly file: string, readonly line: number | undefined, readonly problem: string) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${problem}`);
    this.name = 'FileSourceError';
  }
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const SERVICE_KEYS = ['name', 'namespace', 'hosts', 'addresses', 'ports', 'endpoints', ...SETTING_KEYS];
const PORT_KEYS = ['port', 'targetPort', 'name'];
const ENDPOINT_KEYS = ['address', 'port', 'identity', 'serviceAccount', 'opaque-ports', 'zone', 'labels', 'name', 'namespace'];

export interface FileFormatOptions {
  /** Completes `serviceAccount:` into an identity name. */
  trustDomain: string;
}

export function parseServicesFile(file: string, text: string, o: FileFormatOptions): Catalog {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const fail = (node: Node | { range?: unknown } | undefined, problem: string): never => {
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    throw new FileSourceError(file, range === undefined ? undefined : lines.linePos(range[0]).line, problem);
  };
  const [first] = doc.errors;
  if (first !== undefined) throw new FileSourceError(file, lines.linePos(first.pos[0]).line, first.message.split('\n')[0]!);

  const root = doc.contents;
  // An empty file is a valid state: nothing known (a demo starts from it).
  if (root === null || (isScalar(root) && root.value === null)) return indexCatalog([], new Map());
  if (!isMap(root)) return fail(root, 'the file must be a mapping with a `services:` list');
  checkKeys(root, ['services'], fail);
  const list = root.get('services', true) as Node | undefined;
  if (list === undefined || (isScalar(list) && list.value === null)) return indexCatalog([], new Map());
  if (!isSeq(list)) return fail(list, '`services` must be a list');

  const services: CatalogService[] = [];
  const workloads = new Map<string, Workload>();
  const seen = new Map<string, number>();
  const claimedHosts = new Map<string, string>();
  for (const item of list.items as Node[]) {
    if (!isMap(item)) fail(item, 'a service must be a mapping (name, namespace, ports, endpoints, …)');
    const map = item as YAMLMap;
    checkKeys(map, SERVICE_KEYS, fail);
    const name = label(map, 'name', fail, undefined);
    const namespace = label(map, 'namespace', fail, 'default');
    const key = `${namespace}/${name}`;
    if (seen.has(key)) fail(map, `service ${key} is declared twice (first on line ${seen.get(key)})`);
    seen.set(key, lines.linePos(map.range![0]).line);

    const hosts = strings(map, 'hosts', fail).map(([h, node]) => {
      const host = h.toLowerCase().replace(/\.$/, '');
      if (!HOST.test(host)) fail(node, `"${h}" is not a host name`);
      if (claimedHosts.has(host)) fail(node, `host ${host} already names service ${claimedHosts.get(host)}`);
      claimedHosts.set(host, key);
      return host;
    });
    const vips = strings(map, 'addresses', fail).map(([a, node]) => {
      if (isIP(a) === 0) fail(node, `"${a}" is not an IP address`);
      if (claimedHosts.has(a.toLowerCase())) fail(node, `address ${a} already belongs to service ${claimedHosts.get(a.toLowerCase())}`);
      claimedHosts.set(a.toLowerCase(), key);
      return a.toLowerCase();
    });
    const { settings, problems } = readSettings((k: SettingKey) => scalarText(map, k, fail));
    if (problems.length > 0) fail(map.get(problems[0]!.key, true) as Node, `${problems[0]!.key}: ${problems[0]!.message}`);

    const portsNode = map.get('ports', true) as Node | undefined;
    if (portsNode === undefined || !isSeq(portsNode) || portsNode.items.length === 0) fail(portsNode ?? map, `service ${key}: \`ports\` must be a non-empty list`);
    const portMap = new Map<number, number>();
    for (const p of (portsNode as { items: Node[] }).items) {
      const [port, target] = servicePort(p, fail);
      if (portMap.has(port)) fail(p, `port ${port} is listed twice`);
      portMap.set(port, target);
    }

    const endpointsNode = map.get('endpoints', true) as Node | undefined;
    const endpoints: Array<{ e: Omit<Endpoint, 'port'>; port?: number }> = [];
    if (endpointsNode !== undefined && !(isScalar(endpointsNode) && endpointsNode.value === null)) {
      if (!isSeq(endpointsNode)) fail(endpointsNode, '`endpoints` must be a list');
      for (const en of (endpointsNode as { items: Node[] }).items) endpoints.push(endpoint(en, namespace, o, fail));
    }
    const ports = new Map<number, Endpoint[]>();
    for (const [port, target] of portMap) ports.set(port, endpoints.map(({ e, port: own }) => ({ ...e, port: own ?? target })));
    for (const { e, port: own } of endpoints) {
      const served = own !== undefined ? [own] : [...portMap.values()];
      const known = workloads.get(e.address);
      workloads.set(e.address, { ...(known ?? e), ports: [...new Set([...(known?.ports ?? []), ...served])].sort((a, b) => a - b) });
    }
    services.push({ name, namespace, hosts, vips, settings, ports });
  }
  return indexCatalog(services, workloads);
}

type Fail = (node: Node | undefined, problem: string) => never;

function checkKeys(map: YAMLMap, allowed: readonly string[], fail: Fail): void {
  for (const pair of map.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (k === undefined || !allowed.includes(k)) fail(pair.key as Node, `unknown key ${JSON.stringify(k ?? '?')} (expected one of ${allowed.join(', ')})`);
  }
}

function scalarText(map: YAMLMap, key: string, fail: Fail): string | undefined {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return undefined;
  // `opaque-ports: [5432, 6379]` is as natural to write as "5432,6379".
  if (isSeq(node)) return (node.items as Node[]).map((n) => (isScalar(n) ? String(n.value) : fail(n, `${key}: expected a list of values`))).join(',');
  if (!isScalar(node) || node.value === null || typeof node.value === 'object') return fail(node, `${key}: expected a value`);
  return String(node.value);
}

function label(map: YAMLMap, key: string, fail: Fail, fallback: string | undefined): string {
  const value = scalarText(map, key, fail);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    return fail(map, `missing \`${key}\``);
  }
  if (!LABEL.test(value)) fail(map.get(key, true) as Node, `${key} "${value}" is not a DNS label (lower case letters, digits, '-')`);
  return value;
}

function strings(map: YAMLMap, key: string, fail: Fail): Array<[string, Node]> {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return [];
  if (!isSeq(node)) return fail(node, `\`${key}\` must be a list`);
  return (node.items as Node[]).map((n) => (isScalar(n) && typeof n.value === 'string' ? [n.value, n] : fail(n, `${key}: expected a string`)));
}

function portNumber(node: Node | undefined, what: string, fail: Fail): number {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) return fail(node, `${what} must be a port number (1..65535)`);
  return v;
}

/** `8080` or `{ port: 8080, targetPort: 80, name: http }`. */
function servicePort(node: Node, fail: Fail): [number, number] {
  if (isScalar(node)) {
    const p = portNumber(node, 'a port', fail);
    return [p, p];
  }
  if (!isMap(node)) return fail(node, 'a port is a number or { port, targetPort }');
  checkKeys(node, PORT_KEYS, fail);
  const port = portNumber(node.get('port', true) as Node | undefined ?? node, 'port', fail);
  const target = node.has('targetPort') ? portNumber(node.get('targetPort', true) as Node, 'targetPort', fail) : port;
  return [port, target];
}

function endpoint(node: Node, serviceNamespace: string, o: FileFormatOptions, fail: Fail): { e: Omit<Endpoint, 'port'>; port?: number } {
  if (!isMap(node)) return fail(node, 'an endpoint must be a mapping with at least `address`');
  checkKeys(node, ENDPOINT_KEYS, fail);
  const address = scalarText(node, 'address', fail);
  if (address === undefined) return fail(node, 'an endpoint needs `address`');
  if (isIP(address) === 0) fail(node.get('address', true) as Node, `"${address}" is not an IP address`);
  const namespace = node.has('namespace') ? label(node, 'namespace', fail, undefined) : serviceNamespace;
  const e: { -readonly [K in keyof Omit<Endpoint, 'port'>]: Omit<Endpoint, 'port'>[K] } = { address: address.toLowerCase(), namespace };
  const identity = scalarText(node, 'identity', fail);
  const sa = scalarText(node, 'serviceAccount', fail);
  if (identity !== undefined && sa !== undefined) fail(node, 'give `identity` or `serviceAccount`, not both');
  if (identity !== undefined) {
    if (!HOST.test(identity)) fail(node.get('identity', true) as Node, `identity "${identity}" is not a DNS name`);
    e.identity = identity;
  }
  if (sa !== undefined) {
    if (!LABEL.test(sa)) fail(node.get('serviceAccount', true) as Node, `serviceAccount "${sa}" is not a DNS label`);
    e.identity = `${sa}.${namespace}.serviceaccount.identity.${o.trustDomain}`;
  }
  const opaque = scalarText(node, 'opaque-ports', fail);
  if (opaque !== undefined) {
    try {
      e.opaquePorts = parsePorts(opaque);
    } catch (err) {
      fail(node.get('opaque-ports', true) as Node, `opaque-ports: ${(err as Error).message}`);
    }
  }
  const zone = scalarText(node, 'zone', fail);
  if (zone !== undefined) e.zone = zone;
  const name = scalarText(node, 'name', fail);
  if (name !== undefined) e.name = name;
  const labelsNode = node.get('labels', true) as Node | undefined;
  if (labelsNode !== undefined) {
    if (!isMap(labelsNode)) fail(labelsNode, '`labels` must be a mapping of strings');
    const labels: Record<string, string> = {};
    for (const pair of (labelsNode as YAMLMap).items) {
      if (!isScalar(pair.key) || !isScalar(pair.value)) fail(pair.key as Node, 'labels: keys and values must be plain values');
      labels[String((pair.key as { value: unknown }).value)] = String((pair.value as { value: unknown }).value);
    }
    e.labels = labels;
  }
  const port = node.has('port') ? portNumber(node.get('port', true) as Node, 'port', fail) : undefined;
  return port === undefined ? { e } : { e, port };
}
