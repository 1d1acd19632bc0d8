// Services, EndpointSlices and Pods as the API server returns them, joined into
// the catalog every source shares: a Service's ports resolve through its
// slices' ports (matched by port name, as kube-proxy does) to ready endpoint
// addresses, each dressed with what its pod says: meshed (it carries the
// injected proxy container), its identity (its service account's), its opaque
// ports, its labels. Pure: objects in, catalog out.
import { identityName } from '../../../ca/identity.js';
import { SERVICE_ANNOTATIONS, type Endpoint } from '../../../contract/destination.js';
import { CONFIG } from '../../../contract/annotations.js';
import { PROXY_ENV, SIDECAR } from '../../../contract/sidecar.js';
import { indexCatalog, type Catalog, type CatalogService, type Workload } from '../catalog.js';
import { parsePorts, readSettings, type SettingKey } from '../settings.js';
import type { KubeObject } from './reflector.js';

interface ContainerPort { name?: string; containerPort: number }
interface Container { name: string; ports?: ContainerPort[]; env?: Array<{ name: string; value?: string }>; restartPolicy?: string }

export interface Pod extends KubeObject {
  spec?: { serviceAccountName?: string; hostNetwork?: boolean; containers?: Container[]; initContainers?: Container[] };
  status?: { phase?: string; podIP?: string; podIPs?: Array<{ ip: string }> };
}

export interface Service extends KubeObject {
  spec?: { type?: string; clusterIP?: string; clusterIPs?: string[]; ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: string }> };
}

export interface EndpointSlice extends KubeObject {
  addressType?: string;
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    targetRef?: { kind?: string; name?: string; namespace?: string };
    zone?: string;
    nodeName?: string;
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string }> | null;
}

/** The label that ties a slice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface PodView {
  meshed: boolean;
  identity?: string;
  opaquePorts?: number[];
  labels?: Record<string, string>;
}

const SETTING_ANNOTATION: Record<SettingKey, string> = {
  'opaque-ports': SERVICE_ANNOTATIONS.opaquePorts,
  timeout: SERVICE_ANNOTATIONS.timeout,
  'retry-http': SERVICE_ANNOTATIONS.retryHttp,
  'retry-grpc': SERVICE_ANNOTATIONS.retryGrpc,
  'retry-limit': SERVICE_ANNOTATIONS.retryLimit,
};

function proxyContainer(pod: Pod): Container | undefined {
  // Native sidecars (config.mesh.io/native-sidecar) run the proxy as an init container that keeps running.
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((c) => c.name === SIDECAR.proxyContainer);
}

/** What a pod tells the destination service; `problem` when its opaque-ports annotation cannot be read. */
export function podView(pod: Pod, trustDomain: string): { view: PodView; problem?: string } {
  const proxy = proxyContainer(pod);
  const ns = pod.metadata.namespace ?? 'default';
  const view: PodView = { meshed: proxy !== undefined };
  if (pod.metadata.labels !== undefined) view.labels = pod.metadata.labels;
  let problem: string | undefined;
  if (proxy !== undefined) {
    try {
      view.identity = identityName(pod.spec?.serviceAccountName || 'default', ns, trustDomain);
    } catch (e) {
      problem = `no identity: ${(e as Error).message}`;
    }
    // What the injector resolved for the proxy is what the proxy serves as opaque; the annotation is the fallback.
    const fromEnv = proxy.env?.find((v) => v.name === PROXY_ENV.opaquePorts)?.value;
    const annotation = pod.metadata.annotations?.[CONFIG.opaquePorts];
    const raw = fromEnv ?? annotation;
    if (raw !== undefined) {
      const named = new Map<string, number>();
      for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name !== undefined) named.set(p.name, p.containerPort);
      try {
        view.opaquePorts = parsePorts(raw, named);
      } catch (e) {
        problem = `${CONFIG.opaquePorts}: ${(e as Error).message}`;
      }
    }
  }
  return problem === undefined ? { view } : { view, problem };
}

export interface KubernetesObjects {
  services: Iterable<Service>;
  slices: Iterable<EndpointSlice>;
  pods: Iterable<Pod>;
}

export interface BuiltCatalog {
  catalog: Catalog;
  /** Annotations that could not be read, one per object: `namespace/name: problem`. */
  problems: string[];
}

export function buildCatalog(objects: KubernetesObjects, trustDomain: string): BuiltCatalog {
  const problems: string[] = [];
  const pods = new Map<string, { pod: Pod; view: PodView }>();
  const workloads = new Map<string, Workload>();
  for (const pod of objects.pods) {
    const ns = pod.metadata.namespace ?? 'default';
    const { view, problem } = podView(pod, trustDomain);
    if (problem !== undefined) problems.push(`pod ${ns}/${pod.metadata.name}: ${problem}`);
    pods.set(`${ns}/${pod.metadata.name}`, { pod, view });
    const phase = pod.status?.phase;
    // A host-network pod's address is its node's, shared by many: it answers for none of them.
    if (pod.spec?.hostNetwork === true || phase === 'Succeeded' || phase === 'Failed') continue;
    const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
    for (const ip of ips) workloads.set(ip.toLowerCase(), { address: ip.toLowerCase(), name: pod.metadata.name, namespace: ns, ...endpointExtras(view) });
  }

  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const slice of objects.slices) {
    const svc = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (svc === undefined) continue;
    const key = `${slice.metadata.namespace ?? 'default'}/${svc}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
  }

  const services: CatalogService[] = [];
  for (const svc of objects.services) {
    const ns = svc.metadata.namespace ?? 'default';
    const name = svc.metadata.name;
    if (svc.spec?.type === 'ExternalName') continue;
    const annotations = svc.metadata.annotations ?? {};
    const { settings, problems: bad } = readSettings((k) => annotations[SETTING_ANNOTATION[k]]);
    for (const b of bad) problems.push(`service ${ns}/${name}: ${SETTING_ANNOTATION[b.key]}: ${b.message} (ignored)`);
    const vips = (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : [])).filter((ip) => ip !== 'None' && ip !== '').map((ip) => ip.toLowerCase());
    const ports = new Map<number, Endpoint[]>();
    for (const sp of svc.spec?.ports ?? []) {
      if ((sp.protocol ?? 'TCP') !== 'TCP') continue;
      ports.set(sp.port, endpointsFor(slicesByService.get(`${ns}/${name}`) ?? [], sp.name ?? '', pods));
    }
    services.push({ name, namespace: ns, hosts: [], vips, settings, ports });
  }
  return { catalog: indexCatalog(services, workloads), problems };
}

function endpointExtras(view: PodView): Partial<Endpoint> {
  const e: { -readonly [K in keyof Endpoint]?: Endpoint[K] } = {};
  if (view.identity !== undefined) e.identity = view.identity;
  if (view.opaquePorts !== undefined) e.opaquePorts = view.opaquePorts;
  if (view.labels !== undefined) e.labels = view.labels;
  return e;
}

function endpointsFor(slices: EndpointSlice[], portName: string, pods: Map<string, { view: PodView }>): Endpoint[] {
  const out = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== undefined && slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP')?.port;
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      // Not ready (starting, failing its probe, terminating): no new traffic, as kube-proxy decides.
      if (ep.conditions?.ready === false) continue;
      const ref = ep.targetRef?.kind === 'Pod' ? pods.get(`${ep.targetRef.namespace ?? slice.metadata.namespace}/${ep.targetRef.name}`) : undefined;
      for (const address of ep.addresses) {
        const e: Endpoint = {
          address: address.toLowerCase(),
          port,
          ...(ref === undefined ? {} : endpointExtras(ref.view)),
          ...(ep.zone === undefined ? {} : { zone: ep.zone }),
          ...(ep.targetRef?.name === undefined ? {} : { name: ep.targetRef.name, namespace: ep.targetRef.namespace ?? slice.metadata.namespace ?? 'default' }),
        };
        out.set(`${e.address}:${port}`, e);
      }
    }
  }
  return [...out.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
