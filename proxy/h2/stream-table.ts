// A connection's open streams by id. Not a Map, because of how V8 11 grows and
// shrinks one. A Map that takes and drops an entry per request (a shared session
// carries thousands a second) soon outgrows its hash table and rehashes into a new
// one. The old table is left pointing at the new one and still holding every
// stream it had, for the sake of iterators. Once any full collection has moved the
// current table to the old generation (V8 promotes everything young that is alive
// then), each discarded table keeps the next one and its streams alive through the
// young collections: they are promoted, and the chain goes on without end.
// Measured, HTTP/1.1 at saturation through both proxies, after one full collection:
//   - every request's stream, head and exchange were promoted (~1.4 KB a request);
//   - old space filled at ~20 MB/s, with a full collection every 2-3 s;
//   - ~30% more CPU per request (bench/profile --rest 12 against --rest 0).
// Open addressing over arrays has no such chain: a freed slot is simply cleared.
// Stream ids of one parity are consecutive, so (id >>> 1) & mask spreads them
// with almost no collisions.

const MIN_CAPACITY = 8;

export class StreamTable<T> {
  // All four set by #empty(), from the constructor on.
  /** Stream ids by slot; 0 marks an empty slot (stream 0 is the connection, never stored). */
  #ids!: Int32Array;
  #values!: Array<T | undefined>;
  #mask!: number;
  #size!: number;

  constructor() {
    this.#empty(MIN_CAPACITY);
  }

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = (id >>> 1) & mask; ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === id) return this.#values[i];
      if (k === 0) return undefined;
    }
  }

  set(id: number, value: T): this {
    if (id <= 0) throw new RangeError(`stream id ${id} cannot be stored`);
    // At most half full: probe runs stay short.
    if ((this.#size + 1) * 2 > this.#ids.length) this.#resize(this.#ids.length * 2);
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = (id >>> 1) & mask; ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === id) {
        this.#values[i] = value;
        return this;
      }
      if (k === 0) {
        ids[i] = id;
        this.#values[i] = value;
        this.#size++;
        return this;
      }
    }
  }

  delete(id: number): boolean {
    const ids = this.#ids;
    const values = this.#values;
    const mask = this.#mask;
    let i = (id >>> 1) & mask;
    for (; ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === id) break;
      if (k === 0) return false;
    }
    // Backward-shift deletion: entries after the hole that may not sit before their home slot move up into it.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = ids[j]!;
      if (k === 0) break;
      const home = (k >>> 1) & mask;
      // k may move to i unless its home lies cyclically within (i, j].
      const homeAfterHole = i <= j ? home > i && home <= j : home > i || home <= j;
      if (homeAfterHole) continue;
      ids[i] = k;
      values[i] = values[j];
      i = j;
    }
    ids[i] = 0;
    values[i] = undefined;
    this.#size--;
    // Grown for a burst and empty again: back to the small table.
    if (this.#size === 0 && ids.length > 8 * MIN_CAPACITY) this.clear();
    return true;
  }

  /** The streams, in no particular order: a copy, so callers may delete while they go through it. */
  values(): T[] {
    const out: T[] = [];
    const values = this.#values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  clear(): void {
    this.#empty(MIN_CAPACITY);
  }

  /** Fresh, empty slots: `capacity` of them (a power of two). */
  #empty(capacity: number): void {
    this.#ids = new Int32Array(capacity);
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
    this.#size = 0;
  }

  #resize(capacity: number): void {
    const oldIds = this.#ids;
    const oldValues = this.#values;
    this.#empty(capacity);
    for (let i = 0; i < oldIds.length; i++) {
      const k = oldIds[i]!;
      if (k !== 0) this.set(k, oldValues[i]!);
    }
  }
}
