// Peak-EWMA latency (Linkerd's balancer load): a moving average of response
// latency that jumps up to a slower sample at once (the peak) and decays
// toward faster ones, and toward zero while the endpoint is not used, so an
// endpoint that was slow once gets tried again after a while instead of
// being starved forever. Load = cost × (requests in flight + 1): a burst of
// outstanding requests counts before their latencies are known.

export class PeakEwma {
  /** Estimated latency in ms; starts at the default RTT (no sample yet). */
  #cost: number;
  #stamp: number;
  /** Requests sent to the endpoint and not finished. */
  pending = 0;

  constructor(
    defaultRttMs: number,
    private readonly decayMs: number,
    now: number,
  ) {
    this.#cost = defaultRttMs;
    this.#stamp = now;
  }

  /** A response head arrived `rttMs` after the request was sent. */
  observe(rttMs: number, now: number): void {
    if (!(rttMs >= 0)) return; // a clock bug must not poison the estimate (NaN compares false)
    const elapsed = now - this.#stamp;
    this.#stamp = now;
    if (rttMs > this.#cost) {
      this.#cost = rttMs;
      return;
    }
    const w = elapsed > 0 ? Math.exp(-elapsed / this.decayMs) : 1;
    this.#cost = this.#cost * w + rttMs * (1 - w);
  }

  /** The current estimate, decayed for the time since the last sample. */
  cost(now: number): number {
    const elapsed = now - this.#stamp;
    return elapsed > 0 ? this.#cost * Math.exp(-elapsed / this.decayMs) : this.#cost;
  }

  load(now: number): number {
    return this.cost(now) * (this.pending + 1);
  }
}
