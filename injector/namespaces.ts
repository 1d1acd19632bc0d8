// Namespace sources for the webhook, chosen by the process: the API server
// (GET /api/v1/namespaces/NAME with the injector's own credentials, answers kept
// briefly, since a burst of pods from one ReplicaSet asks the same question), or
// a fixed map for tests and `mesh inject`.
import type { NamespaceSource } from './admission.js';
import type { NamespaceInfo } from './decide.js';
import { stringMap } from './pod.js';

export function staticNamespaces(list: readonly NamespaceInfo[]): NamespaceSource {
  const byName = new Map(list.map((n) => [n.name, n]));
  return { get: async (name) => byName.get(name) };
}

/** GETs a path on the API server: status and parsed body. */
export type ApiGet = (path: string) => Promise<{ status: number; body: unknown }>;

export function apiNamespaces(get: ApiGet, o: { ttlMs?: number; now?: () => number } = {}): NamespaceSource {
  const ttlMs = o.ttlMs ?? 10_000;
  const now = o.now ?? Date.now;
  const cache = new Map<string, { at: number; value: NamespaceInfo | undefined }>();
  return {
    async get(name) {
      const hit = cache.get(name);
      if (hit !== undefined && now() - hit.at < ttlMs) return hit.value;
      const r = await get(`/api/v1/namespaces/${encodeURIComponent(name)}`);
      let value: NamespaceInfo | undefined;
      if (r.status === 404) value = undefined;
      else if (r.status === 200) {
        const meta = (r.body as { metadata?: { labels?: unknown; annotations?: unknown } } | null)?.metadata;
        value = { name, labels: stringMap(meta?.labels), annotations: stringMap(meta?.annotations) };
      } else throw new Error(`GET namespace ${name}: HTTP ${r.status}`);
      cache.set(name, { at: now(), value });
      return value;
    },
  };
}
