// The pod's `config.mesh.io/*` annotations (the namespace's where the pod sets
// none) read into typed settings, or the list of what is wrong with them. Port
// lists and CIDRs go through mesh-init's own parsers: an annotation accepted here
// is one mesh-init accepts in the pod, never a crash-looping init container.
import { DEFAULT_OPAQUE_PORTS, INTERCEPTION_MODES, PROXY_LOG_LEVELS, type InterceptionMode, type ProxyLogLevel } from '../contract/sidecar.js';
import { CONFIG, type ConfigAnnotation } from '../contract/annotations.js';
import { formatPorts, parseCidrList, parsePortList, type PortRange } from '../init/options.js';
import { compareQuantities, isQuantity } from './quantity.js';

export type Annotations = Readonly<Record<string, string>>;

export interface Resources {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
}

export interface SidecarSettings {
  mode: InterceptionMode;
  /** mesh-init's list syntax, '' for none. */
  skipInboundPorts: string;
  skipOutboundPorts: string;
  skipSubnets: string;
  /** MESH_PROXY_OPAQUE_PORTS: numbers and ranges, container port names resolved. */
  opaquePorts: string;
  logLevel: ProxyLogLevel;
  resources: Resources;
  /** undefined: the injector's default (the cluster's support for native sidecars). */
  nativeSidecar: boolean | undefined;
}

/** One annotation that cannot be honoured: the pod is admitted uninjected, and this is why. */
export interface Problem {
  annotation: string;
  value: string;
  from: 'pod' | 'namespace';
  reason: string;
}

export type SettingsResult = { ok: true; settings: SidecarSettings } | { ok: false; problems: Problem[] };

interface Source {
  pod: Annotations;
  namespace: Annotations;
}

/** The pod's value wins; a namespace's applies to every pod in it that sets none. */
function lookup(s: Source, name: ConfigAnnotation): { value: string; from: 'pod' | 'namespace' } | undefined {
  if (s.pod[name] !== undefined) return { value: s.pod[name]!, from: 'pod' };
  if (s.namespace[name] !== undefined) return { value: s.namespace[name]!, from: 'namespace' };
  return undefined;
}

/** Reads every annotation, collecting all problems rather than stopping at the first: one warning lists them all. */
export function readSettings(source: Source, namedPorts: ReadonlyMap<string, number>): SettingsResult {
  const problems: Problem[] = [];
  function read<T>(name: ConfigAnnotation, fallback: T, parse: (value: string) => T): T {
    const found = lookup(source, name);
    if (found === undefined) return fallback;
    try {
      return parse(found.value.trim());
    } catch (e) {
      problems.push({ annotation: name, value: found.value, from: found.from, reason: (e as Error).message });
      return fallback;
    }
  }
  const choice = <T extends string>(choices: readonly T[]) => (v: string): T => {
    if ((choices as readonly string[]).includes(v)) return v as T;
    throw new Error(`not one of ${choices.join(', ')}`);
  };
  const ports = (v: string): string => withoutFlag(() => formatPorts(parsePortList(v, 'ports')));
  const quantity = (v: string): string => {
    if (!isQuantity(v)) throw new Error('not a Kubernetes quantity (e.g. 100m, 0.5, 64Mi)');
    return v;
  };
  const settings: SidecarSettings = {
    mode: read(CONFIG.interceptionMode, 'redirect', choice(INTERCEPTION_MODES)),
    skipInboundPorts: read(CONFIG.skipInboundPorts, '', ports),
    skipOutboundPorts: read(CONFIG.skipOutboundPorts, '', ports),
    skipSubnets: read(CONFIG.skipSubnets, '', (v) => withoutFlag(() => parseCidrList(v, 'subnets').map((c) => c.text).join(','))),
    opaquePorts: read(CONFIG.opaquePorts, formatPorts(DEFAULT_OPAQUE_PORTS.map((p) => ({ from: p, to: p }))), (v) => opaquePorts(v, namedPorts)),
    logLevel: read(CONFIG.proxyLogLevel, 'info', choice(PROXY_LOG_LEVELS)),
    resources: {
      requests: compact({ cpu: read(CONFIG.proxyCpuRequest, undefined, quantity), memory: read(CONFIG.proxyMemoryRequest, undefined, quantity) }),
      limits: compact({ cpu: read(CONFIG.proxyCpuLimit, undefined, quantity), memory: read(CONFIG.proxyMemoryLimit, undefined, quantity) }),
    },
    nativeSidecar: read<boolean | undefined>(CONFIG.nativeSidecar, undefined, (v) => choice(['true', 'false'] as const)(v) === 'true'),
  };
  // The API server refuses a container whose request exceeds its limit: that would be a pod that never starts.
  for (const what of ['cpu', 'memory'] as const) {
    const request = settings.resources.requests[what];
    const limit = settings.resources.limits[what];
    if (request !== undefined && limit !== undefined && compareQuantities(request, limit) > 0) {
      const name = what === 'cpu' ? CONFIG.proxyCpuRequest : CONFIG.proxyMemoryRequest;
      problems.push({ annotation: name, value: request, from: lookup(source, name)!.from, reason: `greater than the limit ${limit}` });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, settings };
}

function compact<T extends Record<string, string | undefined>>(o: T): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: string };
}

/** mesh-init's messages start with the flag they were given; the annotation is named by the caller instead. */
function withoutFlag<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error((e as Error).message.replace(/^[a-z]+: /, ''));
  }
}

function opaquePorts(value: string, namedPorts: ReadonlyMap<string, number>): string {
  const ranges: PortRange[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (/^[a-z]/i.test(item)) {
      const port = namedPorts.get(item);
      if (port === undefined) throw new Error(`"${item}" names no container port of this pod`);
      ranges.push({ from: port, to: port });
    } else {
      ranges.push(...withoutFlag(() => parsePortList(item, 'ports')));
    }
  }
  return formatPorts(ranges);
}
