// Several sources at once (Kubernetes and a file for the VMs beside it): the
// first source that knows an authority answers, in the order given; when none
// does, `notFound`, and the proxy forwards to the original address unchanged.
// Subscribers get the current answer and then every change of it, nothing
// else: changes are re-resolved together once per turn of the event loop and
// an answer equal to the last one sent is not sent again.
import type { Update } from '../../contract/destination.js';
import type { Authority } from './authority.js';
import type { Source } from './source.js';

export interface Resolver {
  /** Calls `send` with the first answer (once every source is ready, or the wait is over) and every change after. */
  subscribe(authority: Authority, send: (u: Update) => void): () => void;
  /** The answer now, from what the sources know (ready or not). */
  resolve(authority: Authority): Update;
  ready(): boolean;
  /** Subscriptions held open now. */
  size(): number;
  close(): void;
}

interface Subscription {
  authority: Authority;
  send(u: Update): void;
  last?: string;
}

export function createResolver(sources: readonly Source[], o: { initialWaitMs?: number } = {}): Resolver {
  const subs = new Set<Subscription>();
  let flushing: NodeJS.Immediate | undefined;
  // A source that never becomes ready (API server down at start) must not hold
  // every proxy's first answer forever; after this, answers come from what is known.
  let waitOver = false;
  const waitTimer = setTimeout(() => {
    waitOver = true;
    schedule();
  }, o.initialWaitMs ?? 5_000);
  waitTimer.unref();

  const allReady = (): boolean => sources.every((s) => s.ready());
  const resolve = (a: Authority): Update => {
    const reasons: string[] = [];
    for (const s of sources) {
      const r = s.resolve(a);
      if (r.kind === 'found') return { kind: 'snapshot', authority: a.raw, settings: r.settings, endpoints: r.endpoints };
      reasons.push(`${s.name}: ${r.reason}`);
    }
    return { kind: 'notFound', authority: a.raw, reason: reasons.join('; ') || 'no discovery source configured' };
  };
  const answer = (sub: Subscription): void => {
    if (!waitOver && !allReady()) return;
    const u = resolve(sub.authority);
    const text = JSON.stringify(u);
    if (text === sub.last) return;
    sub.last = text;
    sub.send(u);
  };
  const flush = (): void => {
    flushing = undefined;
    for (const sub of [...subs]) answer(sub);
  };
  function schedule(): void {
    flushing ??= setImmediate(flush);
  }
  const unlisten = sources.map((s) => s.onChange(schedule));

  return {
    subscribe(authority, send) {
      const sub: Subscription = { authority, send };
      subs.add(sub);
      answer(sub);
      return () => void subs.delete(sub);
    },
    resolve,
    ready: () => allReady(),
    size: () => subs.size,
    close() {
      clearTimeout(waitTimer);
      if (flushing !== undefined) clearImmediate(flushing);
      for (const u of unlisten) u();
      subs.clear();
    },
  };
}
