// Sources by name, as `--source` gives them: `file:PATH` or `kubernetes`.
import type { Log } from '../../shared/log.js';
import { createFileSource } from './file-source.js';
import type { Source } from './source.js';

export type SourceSpec = { kind: 'file'; path: string } | { kind: 'kubernetes'; kubeconfig?: string };

export class SourceSpecError extends Error {
  readonly code = 'MESH_DESTINATION_SOURCE';
  constructor(message: string) {
    super(message);
    this.name = 'SourceSpecError';
  }
}

export function parseSourceSpec(raw: string, kubeconfig?: string): SourceSpec {
  if (raw.startsWith('file:') && raw.length > 'file:'.length) return { kind: 'file', path: raw.slice('file:'.length) };
  if (raw === 'kubernetes') return kubeconfig === undefined ? { kind: 'kubernetes' } : { kind: 'kubernetes', kubeconfig };
  throw new SourceSpecError(`source "${raw}" is not file:PATH or kubernetes`);
}

export async function openSources(specs: readonly SourceSpec[], o: { trustDomain: string; log: Log }): Promise<Source[]> {
  const opened: Source[] = [];
  try {
    for (const spec of specs) {
      switch (spec.kind) {
        case 'file':
          opened.push(await createFileSource({ path: spec.path, trustDomain: o.trustDomain, log: o.log }));
          break;
        case 'kubernetes': {
          // Loaded only when asked for: the Kubernetes client is heavy to import.
          const { createKubernetesSource } = await import('./kubernetes/source.js');
          opened.push(await createKubernetesSource({ kubeconfig: spec.kubeconfig, trustDomain: o.trustDomain, log: o.log }));
          break;
        }
      }
    }
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()));
    throw e;
  }
  return opened;
}
