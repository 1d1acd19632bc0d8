// One authority as discovery knows it: resolving (no answer yet), ready (a
// snapshot: endpoints, settings) or notFound (go to the original
// destination). Requests read it synchronously; the first ones for a new
// authority wait here (bounded) for the first answer. The last answer is kept
// when the destination service goes away: a proxy serves from its cache.
import type { AuthoritySettings, Endpoint as WireEndpoint } from '../../contract/destination.js';
import { P2cBalancer } from '../balance/p2c.js';
import { RetryBudget, type BudgetOptions } from '../balance/budget.js';
import type { Endpoint } from '../balance/endpoint.js';
import { NO_POLICY, RoutePolicy } from '../forward/retry.js';
import type { Sample } from '../metrics-exposition.js';

export type ServiceState = 'resolving' | 'ready' | 'notFound';

/** Something waiting for a service's first answer (an exchange, an accepted connection). */
export interface ResolveWaiter {
  resolved(): void;
}

/** Makes the balancer's object for an endpoint of a snapshot. */
export type EndpointFactory = (e: WireEndpoint) => Endpoint;

export const endpointKey = (e: WireEndpoint): string => `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}${e.identity === undefined ? '' : ` ${e.identity}`}`;

export class Service {
  state: ServiceState = 'resolving';
  /** No answer within the wait: requests go to their original destination until one comes. */
  fallback = false;
  /** Dropped from the cache (idle): holders look it up again. */
  dropped = false;
  policy: RoutePolicy = NO_POLICY;
  settings: AuthoritySettings | undefined;
  /** The one identity every endpoint proves, when they agree (connection-level tls labels). */
  identity: string | undefined;
  readonly balancer: P2cBalancer;
  readonly budget: RetryBudget;
  /** Idle accounting: the sweep epoch of the last use. */
  used = 0;
  /** retry_skipped_total series by reason, found once. */
  readonly skipped = new Map<string, Sample>();
  #byKey = new Map<string, Endpoint>();
  #waiters: ResolveWaiter[] = [];

  constructor(
    readonly authority: string,
    random: () => number,
    budget: BudgetOptions,
    now: number,
  ) {
    this.balancer = new P2cBalancer(random);
    this.budget = new RetryBudget(budget, now);
  }

  /** Requests may be balanced over this service's endpoints. */
  get usable(): boolean {
    return this.state === 'ready' && this.balancer.endpoints.length > 0;
  }

  /** Answered, or given up waiting for: a request need not wait. */
  get settled(): boolean {
    return this.state !== 'resolving' || this.fallback;
  }

  wait(w: ResolveWaiter): void {
    if (this.settled) return w.resolved();
    this.#waiters.push(w);
  }

  snapshot(settings: AuthoritySettings, endpoints: readonly WireEndpoint[], make: EndpointFactory): void {
    const next = new Map<string, Endpoint>();
    let identity: string | undefined;
    let agree = true;
    for (const e of endpoints) {
      const key = endpointKey(e);
      if (next.has(key)) continue;
      // The same endpoint keeps its object: its latency and failure history carry over.
      next.set(key, this.#byKey.get(key) ?? make(e));
      if (next.size === 1) identity = e.identity;
      else if (identity !== e.identity) agree = false;
    }
    this.#byKey = next;
    this.balancer.endpoints = [...next.values()];
    this.identity = agree ? identity : undefined;
    this.settings = settings;
    this.policy = settings.timeoutMs !== undefined || settings.retryHttp !== undefined || settings.retryGrpc !== undefined ? new RoutePolicy(settings) : NO_POLICY;
    this.state = 'ready';
    this.#release();
  }

  notFound(): void {
    this.state = 'notFound';
    this.#byKey = new Map();
    this.balancer.endpoints = [];
    this.identity = undefined;
    this.settings = undefined;
    this.policy = NO_POLICY;
    this.#release();
  }

  /** The wait for a first answer is over: waiters go to their original destination. */
  giveUp(): void {
    if (this.state !== 'resolving') return;
    this.fallback = true;
    this.#release();
  }

  #release(): void {
    const w = this.#waiters;
    if (w.length === 0) return;
    this.#waiters = [];
    for (const x of w) x.resolved();
  }
}
