// Tap targets off Kubernetes: the destination service's file (the same YAML,
// controller/destination/file-format.ts), read afresh for each tap request
// (taps are rare; the answer is always the file's current state). Its
// endpoints are the pods: `name` is the pod, a deployment is the pods whose
// `app` label or name says so (web-1, web-2 → deploy/web), a service is its
// endpoints, a namespace all of them. Meshed pods are those with an identity.
import { readFile } from 'node:fs/promises';
import { ApiError } from '../../shared/api.js';
import { FileSourceError, parseServicesFile } from '../destination/file-format.js';
import type { Workload } from '../destination/catalog.js';
import type { PodInfo, Resource, TapTarget, TargetSource } from './targets.js';

interface Pod {
  name: string;
  namespace: string;
  address: string;
  identity: string | undefined;
  labels: Readonly<Record<string, string>>;
  services: Set<string>;
}

/** Its `app` label, else its name without what a deployment adds (web-7d9f8-x2k4q, web-1 → web). */
export function deploymentOf(p: { name: string; labels: Readonly<Record<string, string>> }): string {
  if (p.labels.app !== undefined) return p.labels.app;
  const m = /^(.+?)(-[a-z0-9]{5,10})?-[a-z0-9]{1,5}$/.exec(p.name);
  return m === null ? p.name : m[1]!;
}

export class FileTargets implements TargetSource {
  constructor(private readonly path: string, private readonly trustDomain: string) {}

  async #pods(): Promise<Pod[]> {
    let catalog;
    try {
      catalog = parseServicesFile(this.path, await readFile(this.path, 'utf8'), { trustDomain: this.trustDomain });
    } catch (e) {
      const why = e instanceof FileSourceError ? e.message : `${this.path}: ${(e as Error).message}`;
      throw new ApiError(503, 'MESH_TAP_SOURCE', `cannot read the services file: ${why}`);
    }
    const pods = new Map<string, Pod>();
    const add = (w: Omit<Workload, 'ports'> & { address: string }, service: string | undefined, serviceNs: string): void => {
      let p = pods.get(w.address);
      if (p === undefined) {
        p = { name: w.name ?? w.address, namespace: w.namespace ?? serviceNs, address: w.address, identity: w.identity, labels: w.labels ?? {}, services: new Set() };
        pods.set(w.address, p);
      }
      if (service !== undefined) p.services.add(service);
    };
    for (const s of catalog.services.values()) for (const eps of s.ports.values()) for (const e of eps) add(e, `${s.namespace}/${s.name}`, s.namespace);
    for (const [address, w] of catalog.workloads) add({ ...w, address }, undefined, 'default');
    return [...pods.values()];
  }

  #select(pods: Pod[], r: Resource): Pod[] {
    if (r.kind === 'namespace') return pods.filter((p) => p.namespace === r.name);
    const inNs = pods.filter((p) => p.namespace === r.namespace);
    if (r.name === '') return inNs;
    switch (r.kind) {
      case 'pod':
        return inNs.filter((p) => p.name === r.name);
      case 'service':
        return inNs.filter((p) => p.services.has(`${r.namespace}/${r.name}`));
      case 'deployment':
        return inNs.filter((p) => deploymentOf(p) === r.name);
    }
  }

  async pods(r: Resource): Promise<PodInfo[]> {
    return this.#select(await this.#pods(), r).map((p) => ({
      pod: p.name,
      namespace: p.namespace,
      address: p.address,
      deployment: deploymentOf(p),
      ...(p.identity === undefined ? {} : { identity: p.identity }),
    }));
  }

  async targets(r: Resource): Promise<TapTarget[]> {
    const out: TapTarget[] = [];
    for (const p of this.#select(await this.#pods(), r)) {
      if (p.identity !== undefined) out.push({ pod: p.name, namespace: p.namespace, address: p.address, identity: p.identity });
    }
    return out;
  }

  async addresses(r: Resource): Promise<string[]> {
    return this.#select(await this.#pods(), r).map((p) => p.address);
  }
}
