// Power of two choices over peak-EWMA load (Linkerd's balancer): pick two
// endpoints at random, send to the less loaded. Cheaper than a full scan and
// without the herd that "always the least loaded" makes when many proxies
// share stale load numbers. Endpoints taken out by failure accrual are
// skipped; when every endpoint is out, the one due to be probed soonest gets
// the request (a service with no healthy endpoint left is still tried,
// rather than every request failed here).
import type { Endpoint } from './endpoint.js';

const TIE = 1.01;

export class P2cBalancer {
  endpoints: readonly Endpoint[] = [];

  constructor(private readonly random: () => number) {}

  /**
   * The endpoint for the next request; undefined only when there are none.
   * `avoid`: the endpoint a retry's previous attempt failed on, not chosen
   * again when there is another.
   */
  pick(now: number, avoid?: Endpoint): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n <= 1) return eps[0];
    const skip = avoid === undefined ? -1 : eps.indexOf(avoid);
    if (skip >= 0 && n === 2) return eps[1 - skip];
    // Two distinct indexes among the n (or n - 1, without `skip`) candidates.
    const m = skip >= 0 ? n - 1 : n;
    let i = Math.floor(this.random() * m);
    let j = Math.floor(this.random() * (m - 1));
    if (j >= i) j++;
    if (skip >= 0) {
      if (i >= skip) i++;
      if (j >= skip) j++;
    }
    const a = eps[i]!;
    const b = eps[j]!;
    const aOk = a.accrual!.available(now);
    const bOk = b.accrual!.available(now);
    if (aOk && bOk) {
      const la = a.ewma!.load(now);
      const lb = b.ewma!.load(now);
      // Within 1% is a tie, and `a` is the random one of the two: endpoints nobody has measured
      // (opaque TCP, or new) differ only by when they were made, which must not decide.
      return la < lb * TIE ? a : b;
    }
    if (aOk) return a;
    if (bOk) return b;
    return this.#anyAvailable(now);
  }

  /** Both choices were out: a scan, rare (only while endpoints are failing). */
  #anyAvailable(now: number): Endpoint {
    let best: Endpoint | undefined;
    let soonest: Endpoint = this.endpoints[0]!;
    for (const e of this.endpoints) {
      const acc = e.accrual!;
      if (acc.available(now) && (best === undefined || e.ewma!.load(now) < best.ewma!.load(now))) best = e;
      if (acc.probeAt < soonest.accrual!.probeAt) soonest = e;
    }
    return best ?? soonest;
  }
}
