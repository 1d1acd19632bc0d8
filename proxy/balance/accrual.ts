// Failure accrual: an endpoint that fails N times in a row is taken out of
// the balancer, then probed back: after a backoff one request is let through
// (the probe); success puts it back, failure doubles the backoff (1 s .. 60 s
// by default, with jitter so a fleet of proxies does not probe in step).
// Pure: the caller passes the time; randomness is injected.

export type AccrualState = 'ready' | 'failed' | 'probing';

export interface AccrualOptions {
  consecutive: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** 0.5: each wait is the backoff times a factor in [1 - 0.5, 1 + 0.5). */
  jitter: number;
  random: () => number;
}

export class FailureAccrual {
  state: AccrualState = 'ready';
  #failures = 0;
  #backoffMs: number;
  /** When the next probe may go (state 'failed'). */
  probeAt = 0;
  /** Times this endpoint was taken out (for metrics and tests). */
  trips = 0;

  constructor(private readonly o: AccrualOptions) {
    this.#backoffMs = o.backoffMinMs;
  }

  /** Whether a request may be sent now; does not change state (the balancer looks at two candidates). */
  available(now: number): boolean {
    return this.state === 'ready' || (this.state === 'failed' && now >= this.probeAt);
  }

  /** A request was sent to this endpoint: when it was failed and due, that request is the probe. */
  dispatched(now: number): void {
    if (this.state === 'failed' && now >= this.probeAt) this.state = 'probing';
  }

  /** The probe's client gave up before it said anything: the next request may probe instead. */
  abandoned(): void {
    if (this.state === 'probing') this.state = 'failed';
  }

  success(): void {
    this.#failures = 0;
    if (this.state !== 'ready') {
      this.state = 'ready';
      this.#backoffMs = this.o.backoffMinMs;
    }
  }

  failure(now: number): void {
    if (this.state === 'probing') return this.#trip(now, true);
    if (this.state === 'failed') return;
    if (++this.#failures >= this.o.consecutive) this.#trip(now, false);
  }

  #trip(now: number, again: boolean): void {
    const o = this.o;
    if (again) this.#backoffMs = Math.min(o.backoffMaxMs, this.#backoffMs * 2);
    else this.trips++;
    this.state = 'failed';
    this.#failures = 0;
    const factor = 1 - o.jitter + 2 * o.jitter * o.random();
    this.probeAt = now + Math.min(o.backoffMaxMs, this.#backoffMs * factor);
  }
}
