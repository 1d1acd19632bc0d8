// When to renew, and how long to wait after a failure. Pure functions of
// time, so the manager's tests can assert exact sequences.

/** Linkerd's bounds: never hammer the service, never hold a certificate a whole day unrefreshed. */
export const MIN_REFRESH_MS = 10_000;
export const MAX_REFRESH_MS = 24 * 3_600_000;
export const REFRESH_FRACTION = 0.7;

/**
 * Delay from `nowMs` until 70% of the certificate's life (notBefore → notAfter),
 * clamped to [min, max]. A certificate already past 70% (e.g. a short lifetime
 * whose notBefore is backdated for clock skew) is renewed after `min`.
 */
export function refreshDelayMs(notBefore: Date, notAfter: Date, nowMs: number, min = MIN_REFRESH_MS, max = MAX_REFRESH_MS): number {
  const start = notBefore.getTime();
  const at = start + (notAfter.getTime() - start) * REFRESH_FRACTION;
  return Math.min(max, Math.max(min, Math.round(at - nowMs)));
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1: each delay is cut by up to this fraction, so a fleet that failed together spreads out. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 60_000, jitter: 0.5 };

/** 1 s, 2 s, 4 s … 60 s, each less up to `jitter` of itself; `reset()` after a success. */
export class Backoff {
  #attempt = 0;

  constructor(private readonly o: BackoffOptions = DEFAULT_BACKOFF, private readonly random: () => number = Math.random) {}

  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base * (1 - this.o.jitter * this.random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
