// The parts of a pod (or pod template) the injector reads, taken defensively
// from JSON it did not make: anything missing or of the wrong type counts as absent.
export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: {
    containers?: ContainerLike[];
    initContainers?: ContainerLike[];
    volumes?: unknown[];
    hostNetwork?: boolean;
    serviceAccountName?: string;
  };
}

export interface ContainerLike {
  name?: string;
  ports?: { name?: string; containerPort?: number }[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function asPod(value: unknown): PodLike | undefined {
  if (!isObject(value)) return undefined;
  if (value.spec !== undefined && !isObject(value.spec)) return undefined;
  if (value.metadata !== undefined && !isObject(value.metadata)) return undefined;
  return value as PodLike;
}

export function stringMap(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

export function containersOf(pod: PodLike): ContainerLike[] {
  const list = (v: unknown): ContainerLike[] => (Array.isArray(v) ? v.filter(isObject) : []);
  return [...list(pod.spec?.initContainers), ...list(pod.spec?.containers)];
}

/** Container port names → numbers, for `config.mesh.io/opaque-ports: mysql`. */
export function namedPorts(pod: PodLike): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of containersOf(pod)) {
    for (const p of Array.isArray(c.ports) ? c.ports : []) {
      if (typeof p?.name === 'string' && typeof p.containerPort === 'number') out.set(p.name, p.containerPort);
    }
  }
  return out;
}

/** How a pod is named in logs and warnings: its name, else its generateName prefix (a Deployment's pods have no name yet). */
export function podDisplayName(pod: PodLike): string {
  return pod.metadata?.name ?? (pod.metadata?.generateName !== undefined ? `${pod.metadata.generateName}<generated>` : '<unnamed>');
}
