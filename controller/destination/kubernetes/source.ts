// The Kubernetes source: Services, EndpointSlices and Pods of every namespace,
// each kept by a reflector (list + watch), joined into a catalog once per turn
// of the event loop after anything changed. While the API server is away the
// reflectors keep their last objects, so answers stay what they were.
import { createKubeClient } from '../../../shared/kubernetes/client.js';
import { findKubernetesCredentials } from '../../../shared/kubernetes/credentials.js';
import type { Log } from '../../../shared/log.js';
import type { Authority } from '../authority.js';
import { emptyCatalog, resolveIn, type Catalog } from '../catalog.js';
import { ChangeNotifier, type Source } from '../source.js';
import { buildCatalog, type EndpointSlice, type Pod, type Service } from './catalog.js';
import { startReflector } from './reflector.js';

export interface KubernetesSourceOptions {
  kubeconfig?: string;
  trustDomain: string;
  log: Log;
  /** For tests: how soon a failed list/watch is retried. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export const RESOURCES = {
  services: '/api/v1/services',
  slices: '/apis/discovery.k8s.io/v1/endpointslices',
  pods: '/api/v1/pods',
} as const;

export class KubernetesSourceError extends Error {
  readonly code = 'MESH_DESTINATION_KUBERNETES';
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesSourceError';
  }
}

export async function createKubernetesSource(o: KubernetesSourceOptions): Promise<Source> {
  const found = findKubernetesCredentials({ kubeconfig: o.kubeconfig });
  if (found.kind === 'none') throw new KubernetesSourceError(found.reason);
  const client = await createKubeClient({ credentials: found, userAgent: 'mesh-destination', timeoutMs: 10_000 });
  const changes = new ChangeNotifier();
  let catalog: Catalog = emptyCatalog();
  let reported = new Set<string>();
  let pending: NodeJS.Immediate | undefined;
  // Ready once a catalog was built from all three first lists, not merely when they arrived.
  let built = false;

  const rebuild = (): void => {
    pending = undefined;
    if (!synced()) return;
    const result = buildCatalog({ services: services.items().values(), slices: slices.items().values(), pods: pods.items().values() }, o.trustDomain);
    catalog = result.catalog;
    built = true;
    // Each problem once while it lasts, not once per rebuild.
    const now = new Set(result.problems);
    for (const p of now) if (!reported.has(p)) o.log.warn('kubernetes object ignored in part', { problem: p });
    reported = now;
    changes.emit();
  };
  // Many events arrive together (a rollout): one rebuild for all of them.
  const changed = (): void => {
    pending ??= setImmediate(rebuild);
  };
  const reflect = <T extends Service | EndpointSlice | Pod>(path: string) =>
    startReflector<T>({ client, path, log: o.log, changed, backoffMinMs: o.backoffMinMs, backoffMaxMs: o.backoffMaxMs });
  const services = reflect<Service>(RESOURCES.services);
  const slices = reflect<EndpointSlice>(RESOURCES.slices);
  const pods = reflect<Pod>(RESOURCES.pods);
  const synced = (): boolean => services.synced() && slices.synced() && pods.synced();
  o.log.info('kubernetes source watching', { server: client.server, credentials: client.source });

  return {
    name: 'kubernetes',
    resolve: (a: Authority) => resolveIn(catalog, a),
    onChange: (l) => changes.on(l),
    ready: () => built,
    async close() {
      if (pending !== undefined) clearImmediate(pending);
      services.close();
      slices.close();
      pods.close();
    },
  };
}
