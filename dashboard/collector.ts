// Reads every meshed proxy of the namespaces the dashboard is showing, every
// few seconds, into one ReadingRing per proxy. The pods come from the tap
// service (as `mesh stat` gets them), asked again each round so a pod that
// comes or goes is followed. A namespace nobody has looked at for a while is
// no longer read: the dashboard costs the proxies nothing when it is idle.
import type { PodEntry } from '../contract/tap.js';
import { readingOf, ReadingRing } from './readings.js';

export interface CollectorDeps {
  /** Every pod of every deployment in a namespace (the tap service's TAP_PODS_PATH). */
  pods(namespace: string): Promise<PodEntry[]>;
  /** One proxy's /metrics text. */
  scrape(address: string): Promise<string>;
  now(): number;
}

export interface CollectorOptions {
  windowMs: number;
  /** A namespace unasked for this long is dropped. */
  idleMs: number;
}

export interface NamespaceState {
  pods: PodEntry[];
  /** By pod address. */
  rings: Map<string, ReadingRing>;
  /** Why the last round could not list the pods or read a proxy (shown on the page, not fatal). */
  problems: string[];
  /** When the last round finished; undefined before the first. */
  updatedAt: number | undefined;
  askedAt: number;
  /** The first round's promise, shared by the requests that wait on it. */
  first?: Promise<void>;
}

export class Collector {
  readonly #namespaces = new Map<string, NamespaceState>();

  constructor(private readonly deps: CollectorDeps, private readonly o: CollectorOptions) {}

  /** The namespace's state; asking keeps it being read. */
  namespace(ns: string): NamespaceState {
    let s = this.#namespaces.get(ns);
    if (s === undefined) this.#namespaces.set(ns, (s = { pods: [], rings: new Map(), problems: [], updatedAt: undefined, askedAt: 0 }));
    s.askedAt = this.deps.now();
    return s;
  }

  /** The namespace's state after at least one round: a first page load waits for the pods rather than showing none. */
  async read(ns: string): Promise<NamespaceState> {
    const s = this.namespace(ns);
    if (s.updatedAt === undefined) await (s.first ??= this.#read(ns, s));
    return s;
  }

  /** One round: every namespace still looked at, concurrently. */
  async round(): Promise<void> {
    const now = this.deps.now();
    for (const [ns, s] of this.#namespaces) if (now - s.askedAt > this.o.idleMs) this.#namespaces.delete(ns);
    await Promise.all([...this.#namespaces].map(([ns, s]) => this.#read(ns, s)));
  }

  async #read(ns: string, s: NamespaceState): Promise<void> {
    const problems: string[] = [];
    let pods: PodEntry[];
    try {
      pods = await this.deps.pods(ns);
    } catch (e) {
      // The last known pods are read on: the tap service being away does not make the proxies' numbers wrong.
      pods = s.pods;
      problems.push(`listing pods: ${(e as Error).message}`);
    }
    const meshed = pods.filter((p) => p.identity !== undefined);
    await Promise.all(
      meshed.map(async (p) => {
        try {
          const text = await this.deps.scrape(p.address);
          let ring = s.rings.get(p.address);
          if (ring === undefined) s.rings.set(p.address, (ring = new ReadingRing(this.o.windowMs)));
          ring.add(readingOf(text, this.deps.now()));
        } catch (e) {
          problems.push(`${p.namespace}/${p.pod}: ${(e as Error).message}`);
        }
      }),
    );
    const live = new Set(meshed.map((p) => p.address));
    for (const address of s.rings.keys()) if (!live.has(address)) s.rings.delete(address);
    s.pods = pods;
    s.problems = problems;
    s.updatedAt = this.deps.now();
  }
}
