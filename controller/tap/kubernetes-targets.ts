// Tap targets on Kubernetes: a resource's pods, asked of the API server for
// each tap request (taps are rare; the answer is always current). A pod's
// deployment is its ReplicaSet owner's name without the pod-template-hash
// (else its `app` label or name, as off Kubernetes); a Service's pods are
// those its selector matches; meshed pods carry the injected proxy, and their
// identity is their service account's (the destination service's podView).
import { ApiError } from '../../shared/api.js';
import { findKubernetesCredentials } from '../../shared/kubernetes/credentials.js';
import { createKubeClient, type KubeClient } from '../../shared/kubernetes/client.js';
import { podView, type Pod, type Service } from '../destination/kubernetes/catalog.js';
import { RESOURCES } from '../destination/kubernetes/source.js';
import { deploymentOf } from './file-targets.js';
import type { PodInfo, Resource, TapTarget, TargetSource } from './targets.js';

type OwnedPod = Pod & { metadata: Pod['metadata'] & { ownerReferences?: Array<{ kind?: string; name?: string }> } };
type SelectingService = Service & { spec?: Service['spec'] & { selector?: Record<string, string> } };

/** The deployment a pod belongs to, as its ReplicaSet owner names it. */
export function podDeployment(p: OwnedPod): string {
  const labels = p.metadata.labels ?? {};
  const rs = p.metadata.ownerReferences?.find((o) => o.kind === 'ReplicaSet')?.name;
  const hash = labels['pod-template-hash'];
  if (rs !== undefined && hash !== undefined && rs.endsWith(`-${hash}`)) return rs.slice(0, -hash.length - 1);
  return deploymentOf({ name: p.metadata.name, labels });
}

export class KubernetesTargets implements TargetSource {
  constructor(private readonly client: KubeClient, private readonly trustDomain: string) {}

  static async create(o: { kubeconfig?: string; trustDomain: string }): Promise<KubernetesTargets> {
    const found = findKubernetesCredentials({ kubeconfig: o.kubeconfig });
    if (found.kind === 'none') throw new Error(`--source kubernetes: ${found.reason}`);
    return new KubernetesTargets(await createKubeClient({ credentials: found, userAgent: 'mesh-tap', timeoutMs: 10_000 }), o.trustDomain);
  }

  async #list<T>(path: string): Promise<T[]> {
    let r: { status: number; body: unknown };
    try {
      r = await this.client.getJson(path);
    } catch (e) {
      throw new ApiError(503, 'MESH_TAP_SOURCE', `the API server (${this.client.server}) did not answer ${path}: ${(e as Error).message}`);
    }
    if (r.status !== 200) throw new ApiError(503, 'MESH_TAP_SOURCE', `the API server answered ${r.status} to ${path}`);
    return ((r.body as { items?: T[] } | undefined)?.items ?? []) as T[];
  }

  async #select(r: Resource): Promise<OwnedPod[]> {
    const ns = r.kind === 'namespace' ? r.name : r.namespace;
    const pods = (await this.#list<OwnedPod>(RESOURCES.pods)).filter((p) => (p.metadata.namespace ?? 'default') === ns && p.status?.podIP !== undefined && p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed');
    if (r.kind === 'namespace' || r.name === '') return pods;
    switch (r.kind) {
      case 'pod':
        return pods.filter((p) => p.metadata.name === r.name);
      case 'deployment':
        return pods.filter((p) => podDeployment(p) === r.name);
      case 'service': {
        const svc = (await this.#list<SelectingService>(RESOURCES.services)).find((s) => s.metadata.name === r.name && (s.metadata.namespace ?? 'default') === ns);
        const selector = svc?.spec?.selector;
        if (selector === undefined) return [];
        return pods.filter((p) => Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v));
      }
    }
  }

  async pods(r: Resource): Promise<PodInfo[]> {
    return (await this.#select(r)).map((p) => {
      const { view } = podView(p, this.trustDomain);
      const info: PodInfo = { pod: p.metadata.name, namespace: p.metadata.namespace ?? 'default', address: p.status!.podIP!, deployment: podDeployment(p) };
      if (view.meshed && view.identity !== undefined) info.identity = view.identity;
      return info;
    });
  }

  async targets(r: Resource): Promise<TapTarget[]> {
    return (await this.pods(r)).filter((p) => p.identity !== undefined).map((p) => ({ pod: p.pod, namespace: p.namespace, address: p.address, identity: p.identity! }));
  }

  async addresses(r: Resource): Promise<string[]> {
    return (await this.pods(r)).map((p) => p.address);
  }
}
