// HPACK fuzzer, standalone and seeded:
//   node dist/proxy/h2/hpack/fuzz.js --iterations 1000000 --seed 7
// Each iteration is one header block, in one of four modes:
//   round trip    our encoder → our decoder, blocks sharing state over a "connection", with
//                 table size changes along the way;
//   hpack.js →    blocks from hpack.js's compressor (random Huffman / never-indexed / indexing
//                 choices per field) must decode to the same list with ours;
//   → hpack.js    our blocks must decode to the same list with hpack.js's decompressor;
//   mutation      a valid block bit-flipped, truncated, spliced or extended: ours must decode it
//                 or throw HpackError, nothing else, in bounded time, and the dynamic table must
//                 stay within its limits.
// It also exports the hpack.js adapter and the header generator used by interop.test.ts and
// bench.ts.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { HpackDecoder, HpackError } from './decoder.js';
import { HpackEncoder } from './encoder.js';

// ---- hpack.js, the reference implementation ----

interface RefField {
  name: string;
  value: string;
  huffman?: boolean;
  neverIndex?: boolean;
  incremental?: boolean;
}
interface RefCompressor {
  write(fields: RefField[]): void;
  read(): Buffer | null;
}
interface RefDecompressor {
  write(block: Buffer): void;
  execute(): void;
  read(): { name: string; value: string } | null;
  once(event: 'error', listener: (err: Error) => void): void;
  removeAllListeners(event: 'error'): void;
}
interface HpackJs {
  compressor: { create(opts: { table: { maxSize: number } }): RefCompressor };
  decompressor: { create(opts: { table: { maxSize: number } }): RefDecompressor };
}
const hpackJs = createRequire(import.meta.url)('hpack.js') as HpackJs;

/** hpack.js's compressor behind a flat-list API. */
export class RefEncoder {
  private readonly c: RefCompressor;
  constructor(maxTableSize = 4096) {
    this.c = hpackJs.compressor.create({ table: { maxSize: maxTableSize } });
  }
  /** `flags[i]`: bit 0 Huffman, bit 1 never indexed, bit 2 without indexing. */
  encode(headers: readonly string[], flags?: readonly number[]): Buffer {
    const fields: RefField[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const f = flags?.[i >> 1] ?? 1;
      fields.push({
        name: headers[i]!,
        value: headers[i + 1]!,
        huffman: (f & 1) !== 0,
        neverIndex: (f & 2) !== 0,
        incremental: (f & 4) === 0,
      });
    }
    this.c.write(fields);
    return this.c.read() ?? Buffer.alloc(0);
  }
}

/** hpack.js's decompressor behind a flat-list API; throws what it reports. */
export class RefDecoder {
  private readonly d: RefDecompressor;
  constructor(maxTableSize = 4096) {
    this.d = hpackJs.decompressor.create({ table: { maxSize: maxTableSize } });
  }
  decode(block: Buffer): string[] {
    let failure: Error | null = null;
    this.d.once('error', (err) => {
      failure = err;
    });
    this.d.write(block);
    this.d.execute();
    this.d.removeAllListeners('error');
    if (failure !== null) throw failure;
    const out: string[] = [];
    for (let f = this.d.read(); f !== null; f = this.d.read()) out.push(f.name, f.value);
    return out;
  }
}

// ---- Seeded generator ----

/** xorshift32: fast, seedable, good enough to pick test inputs. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** 0 <= n < bound */
  int(bound: number): number {
    return this.next() % bound;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const NAMES = [
  ':authority', ':method', ':path', ':scheme', ':status', 'accept', 'accept-encoding', 'authorization',
  'cache-control', 'content-length', 'content-type', 'cookie', 'date', 'etag', 'grpc-timeout', 'host',
  'l5d-dst-canonical', 'server', 'set-cookie', 'te', 'traceparent', 'user-agent', 'x-request-id',
];
const VALUES = [
  '', '0', '200', '404', 'GET', 'POST', '/', '/index.html', 'gzip, deflate', 'https', 'http', 'trailers',
  'application/grpc', 'text/html; charset=utf-8', 'no-cache', 'web.default.svc.cluster.local:8080',
  'curl/8.5.0', 'sid=31d4d96e407aad42', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo',
];

/** A random latin1 string: mostly header-like text, sometimes any octet (obs-text, controls). */
export function randomString(rng: Rng, maxLength: number): string {
  const len = rng.int(maxLength + 1);
  const anyOctet = rng.int(4) === 0;
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(anyOctet ? rng.int(256) : 0x20 + rng.int(0x5f));
  return s;
}

/** A header list mixing known names and values (table hits) with random ones (misses). */
export function randomHeaders(rng: Rng, out: string[]): string[] {
  out.length = 0;
  const count = rng.int(16);
  for (let i = 0; i < count; i++) {
    const r = rng.int(10);
    const name = r < 7 ? rng.pick(NAMES) : r < 9 ? `x-h${rng.int(40)}` : randomString(rng, 12).toLowerCase();
    const v = rng.int(10);
    const value = v < 5 ? rng.pick(VALUES) : v < 9 ? randomString(rng, 40) : randomString(rng, 600);
    out.push(name, value);
  }
  return out;
}

// ---- The fuzz loop ----

export interface FuzzOptions {
  iterations: number;
  seed: number;
  /** Stop early after this long (the CI slice). */
  timeLimitMs?: number;
}

export interface FuzzStats {
  iterations: number;
  roundTrips: number;
  fromReference: number;
  toReference: number;
  mutations: number;
  mutationsRejected: number;
  maxDecodeMs: number;
  elapsedMs: number;
}

const TABLE_SIZES = [0, 64, 256, 4096];

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function fail(what: string, seed: number, iteration: number, block: Buffer): never {
  throw new Error(`fuzz: ${what} (seed ${seed}, iteration ${iteration}, block ${block.toString('hex')})`);
}

function mutate(rng: Rng, block: Buffer): Buffer {
  const b = Buffer.from(block);
  switch (rng.int(5)) {
    case 0: // flip a few bits
      for (let n = 1 + rng.int(3); n > 0 && b.length > 0; n--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return b;
    case 1: // truncate
      return b.subarray(0, rng.int(b.length + 1));
    case 2: // overwrite a byte with an interesting one
      if (b.length > 0) b[rng.int(b.length)] = rng.pick([0x00, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x10, 0x0f]);
      return b;
    case 3: { // splice random bytes in
      const at = rng.int(b.length + 1);
      const junk = Buffer.alloc(1 + rng.int(8));
      for (let i = 0; i < junk.length; i++) junk[i] = rng.int(256);
      return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
    default: { // pure noise
      const junk = Buffer.alloc(rng.int(32));
      for (let i = 0; i < junk.length; i++) junk[i] = rng.int(256);
      return junk;
    }
  }
}

export function runFuzz(opts: FuzzOptions): FuzzStats {
  const rng = new Rng(opts.seed);
  const stats: FuzzStats = {
    iterations: 0, roundTrips: 0, fromReference: 0, toReference: 0, mutations: 0, mutationsRejected: 0, maxDecodeMs: 0, elapsedMs: 0,
  };
  const start = performance.now();
  const deadline = opts.timeLimitMs === undefined ? Infinity : start + opts.timeLimitMs;
  const headers: string[] = [];
  const flags: number[] = [];
  const out: string[] = [];
  // One "connection" per mode, replaced every so often so that fresh tables are covered too.
  let size = 4096;
  let ourEnc = new HpackEncoder();
  let ourDec = new HpackDecoder();
  let refEnc = new RefEncoder();
  let refDecOfOurs = new HpackDecoder();
  let ourEnc2 = new HpackEncoder();
  let refDec = new RefDecoder();
  let mutDec = new HpackDecoder();
  let lastBlock: Buffer = Buffer.alloc(0);

  for (let i = 0; i < opts.iterations; i++) {
    if ((i & 63) === 0 && performance.now() > deadline) break;
    stats.iterations++;
    if (rng.int(200) === 0) {
      size = rng.pick(TABLE_SIZES);
      const huffman = rng.int(2) === 0;
      ourEnc = new HpackEncoder({ maxTableSize: size, huffman });
      ourDec = new HpackDecoder({ maxTableSize: size, maxHeaderListSize: 1 << 20 });
      refEnc = new RefEncoder(size);
      refDecOfOurs = new HpackDecoder({ maxTableSize: size, maxHeaderListSize: 1 << 20 });
      ourEnc2 = new HpackEncoder({ maxTableSize: size, huffman: !huffman });
      refDec = new RefDecoder(size);
    }
    randomHeaders(rng, headers);
    const mode = rng.int(8);
    if (mode < 4) {
      // Round trip; now and then the peer changes its table size (never above what our
      // decoder allows).
      if (rng.int(50) === 0) ourEnc.setMaxTableSize(rng.int(size + 1));
      const block = ourEnc.encode(headers);
      out.length = 0;
      ourDec.decode(block, out);
      if (!sameList(out, headers)) fail('round trip differs', opts.seed, i, block);
      if (ourDec.dynamicTableSize > ourDec.dynamicTableLimit) fail('table over its limit', opts.seed, i, block);
      stats.roundTrips++;
      lastBlock = block;
    } else if (mode === 4) {
      flags.length = 0;
      for (let f = 0; f < headers.length / 2; f++) flags.push(rng.int(8) & (rng.int(2) === 0 ? 7 : 1));
      const block = refEnc.encode(headers, flags);
      out.length = 0;
      refDecOfOurs.decode(block, out);
      if (!sameList(out, headers)) fail('hpack.js block decodes differently', opts.seed, i, block);
      stats.fromReference++;
      lastBlock = block;
    } else if (mode === 5) {
      const block = ourEnc2.encode(headers);
      const theirs = refDec.decode(block);
      if (!sameList(theirs, headers)) fail('hpack.js decodes our block differently', opts.seed, i, block);
      stats.toReference++;
    } else {
      const block = mutate(rng, lastBlock);
      if (rng.int(100) === 0) mutDec = new HpackDecoder({ maxTableSize: rng.pick(TABLE_SIZES), maxHeaderListSize: 1 + rng.int(4096) });
      out.length = 0;
      const t0 = performance.now();
      try {
        mutDec.decode(block, out);
        if ((out.length & 1) !== 0) fail('odd output', opts.seed, i, block);
      } catch (e) {
        if (!(e instanceof HpackError)) fail(`threw ${String(e)}`, opts.seed, i, block);
        stats.mutationsRejected++;
        // A COMPRESSION_ERROR ends the connection; carry on with a fresh decoder now and then
        // so that both clean and damaged tables are exercised.
        if (e.code === 'MESH_HPACK_DECODE' && rng.int(4) === 0) mutDec = new HpackDecoder();
      }
      const ms = performance.now() - t0;
      if (ms > stats.maxDecodeMs) stats.maxDecodeMs = ms;
      if (mutDec.dynamicTableSize > mutDec.dynamicTableLimit) fail('table over its limit', opts.seed, i, block);
      stats.mutations++;
    }
  }
  stats.elapsedMs = performance.now() - start;
  return stats;
}

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? Number(process.argv[at + 1]) : fallback;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const stats = runFuzz({ iterations: arg('--iterations', 100000), seed: arg('--seed', 7) });
  const rate = Math.round(stats.iterations / (stats.elapsedMs / 1000));
  process.stdout.write(
    `hpack fuzz: ${stats.iterations} iterations in ${(stats.elapsedMs / 1000).toFixed(1)} s (${rate}/s): ` +
      `${stats.roundTrips} round trips, ${stats.fromReference} hpack.js→ours, ${stats.toReference} ours→hpack.js, ` +
      `${stats.mutations} mutations (${stats.mutationsRejected} rejected), slowest decode ${stats.maxDecodeMs.toFixed(2)} ms\n`,
  );
}
