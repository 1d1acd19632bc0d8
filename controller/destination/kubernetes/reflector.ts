// One resource kind kept current from the API server: list, then watch from the
// list's resourceVersion; re-watch from the last version seen when a watch
// ends; relist when the server says that version is gone (410, as an HTTP
// status or as an ERROR event); back off while the server is unreachable,
// keeping the last known objects meanwhile (a source that goes away leaves its
// state in place). BOOKMARK events only move the version forward.
//
// Our own list+watch rather than @kubernetes/client-node's informer: the
// shared client already holds the credentials and speaks node:https, and the
// informer stops on an error and leaves restarting, backoff and the 410 relist
// to its caller anyway; here those rules are in one readable loop.
import type { KubeClient } from '../../../shared/kubernetes/client.js';
import type { Log } from '../../../shared/log.js';

export interface KubeObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; message?: string };
}

export interface Reflector<T extends KubeObject> {
  /** Keyed `namespace/name`. */
  items(): ReadonlyMap<string, T>;
  /** The first list has arrived. */
  synced(): boolean;
  close(): void;
}

export interface ReflectorOptions {
  client: KubeClient;
  /** Collection path, e.g. `/api/v1/pods`. */
  path: string;
  log: Log;
  /** After every change of the items (and the first list). */
  changed(): void;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** The watch's timeoutSeconds (default 300..600, random, as client-go). */
  watchSeconds?: number;
}

const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

class Gone extends Error {}

export function startReflector<T extends KubeObject>(o: ReflectorOptions): Reflector<T> {
  let items = new Map<string, T>();
  let synced = false;
  let resourceVersion = '';
  const stop = new AbortController();
  const min = o.backoffMinMs ?? 500;
  const max = o.backoffMaxMs ?? 30_000;
  let failures = 0;
  const what = o.path;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      stop.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  // Exponential with jitter: many controllers restarting at once must not hammer a recovering API server in step.
  const backoff = (): number => Math.min(max, min * 2 ** Math.min(failures++, 16)) * (0.5 + Math.random() / 2);

  const list = async (): Promise<void> => {
    const { status, body } = await o.client.getJson(o.path, { timeoutMs: 30_000 });
    const list = body as { metadata?: { resourceVersion?: string }; items?: T[] } | undefined;
    if (status !== 200 || !Array.isArray(list?.items)) throw new Error(`list ${what}: HTTP ${status}${statusMessage(body)}`);
    items = new Map(list.items.map((i) => [keyOf(i), i]));
    resourceVersion = list.metadata?.resourceVersion ?? '';
    synced = true;
    o.changed();
  };

  const watch = async (): Promise<void> => {
    const seconds = o.watchSeconds ?? 300 + Math.floor(Math.random() * 300);
    const query = `watch=1&resourceVersion=${encodeURIComponent(resourceVersion)}&allowWatchBookmarks=true&timeoutSeconds=${seconds}`;
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    stop.signal.addEventListener('abort', abort, { once: true });
    // A connection that went silent (no FIN) is noticed when the server's own timeout has long passed.
    const idle = setTimeout(abort, (seconds + 30) * 1000);
    try {
      const { status, body } = await o.client.stream(`${o.path}?${query}`, { signal: controller.signal });
      if (status === 410) {
        body.resume();
        throw new Gone();
      }
      if (status !== 200) {
        const text = await readAll(body);
        throw new Error(`watch ${what}: HTTP ${status}${statusMessage(safeJson(text))}`);
      }
      failures = 0;
      let pending = '';
      body.setEncoding('utf8');
      for await (const chunk of body as AsyncIterable<string>) {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() !== '') apply(JSON.parse(line) as WatchEvent);
        }
      }
    } finally {
      clearTimeout(idle);
      stop.signal.removeEventListener('abort', abort);
      // Ends the request whichever way we left (an ERROR event, a bad line): no half-read watch stays open.
      controller.abort();
    }
  };

  const apply = (e: WatchEvent): void => {
    if (e.type === 'ERROR') {
      if (e.object.code === 410) throw new Gone();
      throw new Error(`watch ${what}: ERROR event ${e.object.code ?? ''} ${e.object.message ?? ''}`);
    }
    if (e.object.metadata?.resourceVersion !== undefined) resourceVersion = e.object.metadata.resourceVersion;
    switch (e.type) {
      case 'BOOKMARK':
        return;
      case 'ADDED':
      case 'MODIFIED':
        items.set(keyOf(e.object), e.object as unknown as T);
        break;
      case 'DELETED':
        items.delete(keyOf(e.object));
        break;
    }
    o.changed();
  };

  void (async () => {
    let needList = true;
    while (!stop.signal.aborted) {
      try {
        if (needList) {
          await list();
          needList = false;
          failures = 0;
        }
        await watch();
        // A watch the server ended (its timeoutSeconds): watch again from where we are.
      } catch (e) {
        if (stop.signal.aborted) break;
        if (e instanceof Gone) {
          o.log.info('watch expired, relisting', { resource: what, resourceVersion });
          needList = true;
          continue;
        }
        const wait = backoff();
        o.log.warn('kubernetes list/watch failed, keeping the last known state', { resource: what, error: (e as Error).message, retryInMs: Math.round(wait) });
        await sleep(wait);
      }
    }
  })();

  return {
    items: () => items,
    synced: () => synced,
    close: () => stop.abort(),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function statusMessage(body: unknown): string {
  const m = (body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? `: ${m}` : '';
}

async function readAll(body: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
