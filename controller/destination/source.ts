// A discovery source: something that knows services and workloads (the
// Kubernetes API, a file) and says when what it knows changed. The resolver
// asks every source in turn; a source only keeps its catalog current.
import type { Authority } from './authority.js';
import type { Resolution } from './catalog.js';

export interface Source {
  /** `file:/etc/mesh/services.yaml`, `kubernetes`: for logs and `notFound` reasons. */
  readonly name: string;
  /** What the source knows of `authority` now. A source that went away answers from its last known state. */
  resolve(authority: Authority): Resolution;
  /** Called after every change of what the source knows (and when it first becomes ready). */
  onChange(listener: () => void): () => void;
  /** It has read its first state (the file once, the first list). */
  ready(): boolean;
  close(): Promise<void>;
}

/** The listener list every source keeps. */
export class ChangeNotifier {
  private readonly listeners = new Set<() => void>();
  on(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(): void {
    for (const l of [...this.listeners]) l();
  }
}
