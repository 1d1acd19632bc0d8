// The proxy's discovery cache: one stream per authority to the destination
// service, all on one client (one HTTP/2 session). A lookup is a Map read;
// a new authority opens its stream and its first requests wait (bounded by
// waitMs) for the first answer, then fall back to their original
// destination. A stream that breaks is reopened with backoff and jitter and
// its last state kept, so a destination service outage changes nothing for
// traffic; the outage is said once (a log line, destination_client_up), not
// per request. Authorities not used for idleMs are dropped.
import { performance } from 'node:perf_hooks';
import { DESTINATION_GET_PATH, RESILIENCE_DEFAULTS, type GetRequest } from '../../contract/destination.js';
import type { Log } from '../log.js';
import { parseUpdate } from './update.js';
import { Service, type EndpointFactory } from './service.js';

/** What the cache needs of shared/api-stream.ts's JsonStreamClient (tests give a fake). */
export interface StreamOpener {
  open(path: string, body: unknown, h: { onMessage(msg: unknown): void; onEnd(error: { code?: string; message: string } | undefined): void }): { close(): void };
  close(): void;
}

export interface DiscoveryOptions {
  streams: StreamOpener;
  log: Log;
  /** Completes short names ("web:8080") as the pod's DNS search path would. */
  contextNamespace: string | undefined;
  /** How long the first request for a new authority waits for an answer. */
  waitMs: number;
  /** An authority unused this long is dropped (its stream closed). */
  idleMs: number;
  endpoint: EndpointFactory;
  now?: () => number;
  random?: () => number;
  /** Stream reopen backoff bounds. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

const BUDGET = {
  ratio: RESILIENCE_DEFAULTS.retryBudgetRatio,
  minPerSecond: RESILIENCE_DEFAULTS.retryBudgetMinPerSecond,
  windowMs: RESILIENCE_DEFAULTS.retryBudgetWindowMs,
};
/**
 * Authorities followed at once. The app chooses Host headers: past this many,
 * new ones are not looked up (they go to their original destination) rather
 * than each opening a stream, until idle ones are dropped.
 */
const MAX_AUTHORITIES = 10_000;
/** Idle sweeps per idle period: an authority goes between idleMs and 1.25 × idleMs after its last use. */
const SWEEPS_PER_IDLE = 4;

/** One authority's stream and its reopen state. */
class Watch {
  handle: { close(): void } | undefined;
  failures = 0;
  timer: NodeJS.Timeout | undefined;
  waitTimer: NodeJS.Timeout | undefined;
  constructor(readonly service: Service) {}
}

export class Discovery {
  readonly #services = new Map<string, Service>();
  readonly #watches = new Map<Service, Watch>();
  /** undefined until the first answer or failure. */
  #up: boolean | undefined;
  #epoch = 0;
  readonly #sweep: NodeJS.Timeout;
  readonly #now: () => number;
  readonly #random: () => number;
  #closed = false;

  constructor(private readonly o: DiscoveryOptions) {
    this.#now = o.now ?? (() => performance.now());
    this.#random = o.random ?? Math.random;
    this.#sweep = setInterval(() => this.#dropIdle(), Math.max(10, o.idleMs / SWEEPS_PER_IDLE));
    this.#sweep.unref();
  }

  /** The idle sweep's clock: a service is marked used by setting its `used` to this. */
  get epoch(): number {
    return this.#epoch;
  }

  /** 1 when the destination service answers, 0 when it does not (or never has). */
  get up(): boolean {
    return this.#up === true;
  }

  services(): IterableIterator<Service> {
    return this.#services.values();
  }

  /** The service for `authority` ("host:port", lower case), opening its stream on first use. */
  service(authority: string): Service {
    let s = this.#services.get(authority);
    if (s === undefined) {
      if (this.#services.size >= MAX_AUTHORITIES) return this.#full(authority);
      s = this.#add(authority);
    }
    s.used = this.#epoch;
    return s;
  }

  #overflow: Service | undefined;

  /** Too many authorities: one shared answer, "not known", said once in the log. */
  #full(authority: string): Service {
    if (this.#overflow === undefined) {
      this.o.log.warn('too many authorities followed: new ones go to their original destination', { limit: MAX_AUTHORITIES, authority });
      this.#overflow = new Service('overflow', this.#random, BUDGET, this.#now());
      this.#overflow.notFound();
    }
    return this.#overflow;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const w of this.#watches.values()) this.#stop(w);
    this.#watches.clear();
    this.#services.clear();
    this.o.streams.close();
  }

  #add(authority: string): Service {
    const s = new Service(authority, this.#random, BUDGET, this.#now());
    this.#services.set(authority, s);
    const w = new Watch(s);
    this.#watches.set(s, w);
    w.waitTimer = setTimeout(() => {
      w.waitTimer = undefined;
      if (!s.settled) this.o.log.info('no destination answer in time: original destination meanwhile', { authority, wait: `${this.o.waitMs}ms` });
      s.giveUp();
    }, this.o.waitMs);
    w.waitTimer.unref();
    this.#open(w);
    return s;
  }

  #open(w: Watch): void {
    const s = w.service;
    const req: GetRequest = { authority: s.authority, ...(this.o.contextNamespace ? { contextNamespace: this.o.contextNamespace } : {}) };
    let ended = false;
    const handle = this.o.streams.open(DESTINATION_GET_PATH, req, {
      onMessage: (msg) => {
        if (ended || s.dropped) return;
        w.failures = 0;
        this.#markUp();
        const u = parseUpdate(msg);
        if (u === undefined) {
          this.o.log.warn('destination update ignored: malformed', { authority: s.authority });
          return;
        }
        if (u.kind === 'notFound') s.notFound();
        else s.snapshot(u.settings, u.endpoints, this.o.endpoint);
        this.#clearWait(w);
        if (this.o.log.enabled('debug')) this.o.log.debug('destination update', { authority: s.authority, kind: u.kind, endpoints: u.kind === 'snapshot' ? u.endpoints.length : 0 });
      },
      onEnd: (error) => {
        if (ended) return;
        ended = true;
        w.handle = undefined;
        if (this.#closed || s.dropped) return;
        // Closed by the server or lost: either way the answer may go stale. Keep it, and ask again.
        this.#markDown(error);
        const min = this.o.reconnectMinMs ?? 250;
        const max = this.o.reconnectMaxMs ?? 10_000;
        const backoff = Math.min(max, min * 2 ** Math.min(w.failures++, 16));
        w.timer = setTimeout(() => {
          w.timer = undefined;
          if (!this.#closed && !s.dropped) this.#open(w);
        }, backoff * (0.5 + this.#random()));
        w.timer.unref();
      },
    });
    if (!ended) w.handle = handle;
  }

  #clearWait(w: Watch): void {
    if (w.waitTimer !== undefined) clearTimeout(w.waitTimer);
    w.waitTimer = undefined;
  }

  #markUp(): void {
    if (this.#up === true) return;
    const was = this.#up;
    this.#up = true;
    if (was === false) this.o.log.info('destination service reachable again: updates flow');
  }

  #markDown(error: { code?: string; message: string } | undefined): void {
    if (this.#up === false) return;
    this.#up = false;
    this.o.log.warn('destination service unreachable: serving from the last answers', { code: error?.code ?? 'MESH_DESTINATION_CLOSED', reason: error?.message ?? 'stream closed' });
  }

  #stop(w: Watch): void {
    this.#clearWait(w);
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
    const h = w.handle;
    w.handle = undefined;
    h?.close();
  }

  #dropIdle(): void {
    const cutoff = this.#epoch - SWEEPS_PER_IDLE;
    this.#epoch++;
    for (const [authority, s] of this.#services) {
      if (s.used > cutoff) continue;
      s.dropped = true;
      this.#services.delete(authority);
      const w = this.#watches.get(s);
      this.#watches.delete(s);
      if (w) this.#stop(w);
      s.giveUp();
    }
  }
}
