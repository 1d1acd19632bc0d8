// How many file descriptors the proxy may still use, so that a flood of
// clients is refused at accept while there are descriptors left for what the
// accepted connections need: upstream connects, the admin port, log files.
// Without a reserve the proxy fails at its worst moment: it accepts a client,
// then cannot dial the upstream (EMFILE), and answers 502 to everyone.
import { readdirSync } from 'node:fs';
import { raiseFdLimit, type FdLimit } from '../native/index.js';

export interface FdBudgetOptions {
  /** Descriptors kept for upstreams, admin and logging. Default: max(64, 2% of the limit). */
  reserve?: number;
  /** Re-read the open count at most this often, and only when about to refuse. Default 1000. */
  recountIntervalMs?: number;
  /** Seams for tests; the real ones by default. */
  raiseLimit?: () => FdLimit;
  countOpen?: () => number;
  now?: () => number;
}

export interface FdBudgetStart extends FdLimit {
  /** Descriptors open when the budget started counting. */
  open: number;
  reserve: number;
}

/** Open descriptors, from the kernel's own list. A directory read, so not for every accept. */
export function countOpenFds(): number {
  // The listing includes the descriptor readdir opened to read it.
  return readdirSync('/proc/self/fd').length - 1;
}

export class FdBudget {
  /** Until raise() has read the limit there is no budget: every connection is accepted, as before. */
  #limit = Infinity;
  #reserve = 0;
  /** Descriptors counted by acquire() and release(): per connection its own, and an upstream of its own while it may have one. */
  #tracked = 0;
  /** Open descriptors no acquire() counted (files, DNS, the process's own), as of the last recount. */
  #untracked = 0;
  #countedAt = -Infinity;
  readonly #options: FdBudgetOptions;

  constructor(options: FdBudgetOptions = {}) {
    this.#options = options;
  }

  /** Raises the soft limit to the hard one and takes the one full count of open descriptors. */
  raise(): FdBudgetStart {
    const limit = (this.#options.raiseLimit ?? raiseFdLimit)();
    this.#limit = limit.soft;
    this.#reserve = this.#options.reserve ?? Math.max(64, Math.ceil(limit.soft * 0.02));
    this.#recount();
    return { ...limit, open: this.#tracked + this.#untracked, reserve: this.#reserve };
  }

  /** The proxy opened a descriptor (accepted or dialled a socket). */
  acquire(): void {
    this.#tracked++;
  }

  /** A descriptor from acquire() was closed. */
  release(): void {
    // An unpaired release would make the budget generous for good: it never goes below nothing.
    if (this.#tracked > 0) this.#tracked--;
  }

  /** Descriptors left before the limit, by the estimate. */
  get remaining(): number {
    return this.#limit - this.#tracked - this.#untracked;
  }

  /** True when one more connection would still leave the reserve untouched. */
  canAccept(): boolean {
    if (this.remaining > this.#reserve) return true;
    // The estimate only drifts with descriptors we do not track (files, DNS,
    // children); before refusing a client on it, check it against the kernel.
    const now = (this.#options.now ?? Date.now)();
    if (now - this.#countedAt < (this.#options.recountIntervalMs ?? 1000)) return false;
    this.#recount(now);
    return this.remaining > this.#reserve;
  }

  // The kernel's count adds what acquire() does not see; it never takes away from what
  // acquire() counted. Were the estimate set to the kernel's count, connections that use
  // one descriptor (an HTTP client whose upstream is pooled) would still release two when
  // they close, and the estimate would fall below the truth for good: after a swing from
  // HTTP clients to opaque ones near the limit, 400 descriptors past it (EMFILE on the
  // upstream dials, the accept-then-reset this budget exists to prevent).
  #recount(now = (this.#options.now ?? Date.now)()): void {
    this.#untracked = Math.max(0, (this.#options.countOpen ?? countOpenFds)() - this.#tracked);
    this.#countedAt = now;
  }
}
