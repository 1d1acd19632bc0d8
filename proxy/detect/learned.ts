// Destinations known to speak first (MySQL's greeting, SMTP's banner, NATS's
// INFO): the next connection to one opens its upstream at accept instead of
// after the quiet window. Bounded (the least recently confirmed goes first) and
// expiring, so a port whose server changed (a new deployment on the same
// address) is judged afresh; the stacks also forget a destination whose client
// spoke first while its server stayed silent.
// The same memory, a second instance, holds the opposite: destinations whose quiet client
// then spoke HTTP (server-first.ts's `clientFirst`), which get no early upstream.
//
// A Map keeps insertion order: deleting and re-inserting on every confirmation
// makes its first key the least recently confirmed, so eviction is O(1).

export class ServerFirstMemory {
  /** key ("10.0.0.7:3306") → expiry, on the clock given. */
  readonly #entries = new Map<string, number>();

  constructor(
    /** At most this many destinations; 0 remembers nothing. */
    readonly capacity: number,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** Known (and not expired) as server-speaks-first. */
  has(key: string): boolean {
    const expires = this.#entries.get(key);
    if (expires === undefined) return false;
    if (expires > this.now()) return true;
    this.#entries.delete(key);
    return false;
  }

  /** Seen speaking first again: remembered for another ttl. True when it was not known before. */
  learn(key: string): boolean {
    if (this.capacity <= 0) return false;
    const known = this.has(key);
    this.#entries.delete(key);
    this.#entries.set(key, this.now() + this.ttlMs);
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return !known;
  }

  /** Its client spoke first: no longer assumed. True when it was known. */
  forget(key: string): boolean {
    const known = this.has(key);
    this.#entries.delete(key);
    return known;
  }
}
