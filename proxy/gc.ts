// Read buffers collected on time. Node gives every socket read a fresh
// ArrayBuffer (a plain socket's read, a TLS record's cleartext), and V8 frees
// dead ArrayBuffers in a collection. It collects the young generation when the
// JS heap's young space is full, which small requests reach quickly; a proxy
// moving bulk bytes allocates almost no JS per 16-64 KiB read, so the dead read
// buffers pile up instead (measured, opaque bulk through both proxies: 10→40 MB
// of ArrayBuffers, sawtooth). V8 then started full mark-compact collections
// (~70 per GiB each way in each proxy, 2-8 ms pauses plus marking steps, ~14%
// of the CPU by perf) with 12-33 MB of old-space limit to spare, as if the pile
// counted against the old generation (which rule of V8 11's starts them was not
// pinned down: a plain TLS pair moving the same bytes gets none). The cure was
// measured: a young collection after every READ_BUDGET bytes read (~0.4 ms
// each, mostly freeing the buffers) and no full collection left (bulk 215-226
// MB/s against 165-186 in the same conditions; 16 MiB did as well there, 8
// leaves margin below the smallest slack seen).
//
// The request path pays one addition per read; the collection runs once per
// budget, at the end of the turn that crossed it. Under HTTP load V8's own young
// collections come many times a second, and one more per budget is noise.
// Plain opaque bulk (no mTLS), which V8 handled without full collections, gets
// ~4x its young collections (250 against 63 per GiB) for the same CPU per MiB
// and 8-17x fewer page faults (freed buffers are reused sooner).
import v8 from 'node:v8';
import vm from 'node:vm';

/** Bytes read between two young collections asked for here. */
export const READ_BUDGET = 8 * 1048576;

type Collect = () => void;

/** Counts bytes read into fresh buffers; past `budget`, one `collect` at the end of the turn. */
export class ReadBudget {
  #since = 0;
  #scheduled = false;

  constructor(
    private readonly budget: number,
    private readonly collect: Collect,
  ) {}

  note(n: number): void {
    this.#since += n;
    if (this.#since >= this.budget && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    this.#since = 0;
    this.collect();
  };
}

/**
 * V8's young collection, or undefined where it cannot be had. The gc() function V8 exposes
 * with --expose-gc, taken from a context of its own: the proxy's globals are left as they are,
 * and it works whatever flags node was started with.
 */
export function youngCollector(): Collect | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return undefined;
    return () => (gc as (o: { type: string }) => void)({ type: 'minor' });
  } catch {
    return undefined;
  }
}

const ignore = (): void => {};
const reads = new ReadBudget(READ_BUDGET, youngCollector() ?? ignore);

/** A read of `n` bytes into a fresh buffer (socket data handlers call it). */
export function noteRead(n: number): void {
  reads.note(n);
}

/** For a stream whose reads go elsewhere (pipe): as a 'data' listener, made once. */
export function countRead(chunk: Buffer): void {
  reads.note(chunk.length);
}
