// HPACK encoder (RFC 7541): one instance per connection direction, driving the peer's decoder.
import { Buffer } from 'node:buffer';
import { ENTRY_OVERHEAD } from './decoder.js';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { STATIC_BY_NAME, STATIC_COUNT } from './static-table.js';

export interface HpackEncoderOptions {
  /** The most dynamic table we are willing to keep for the peer's decoder. Default 4096. */
  maxTableSize?: number;
  /**
   * Huffman-code strings when that makes them shorter. Default off: see bench.ts. On loopback
   * and LAN links the proxy is CPU-bound, not byte-bound, and headers that repeat are sent as
   * one-byte indexes anyway, so the bytes Huffman saves are mostly on the first request.
   */
  huffman?: boolean;
}

// How a header is represented when it is not already in a table. Chosen by name:
// - NEVER: never-indexed literal (RFC 7541 7.1.3). Credentials must not sit in a table that a
//   CRIME-style attacker can probe by guessing values on a shared connection, and the flag tells
//   the next hop to keep them out of its table too. Short cookies are guessable the same way;
//   cookies of 20 octets and more are assumed to carry enough entropy and are indexed, so a
//   session cookie repeated on every request costs one byte (nghttp2's rule).
// - NO_INDEX: literal without indexing. Values that change on (nearly) every message would only
//   evict useful entries: lengths, dates, validators, trace and request ids, deadlines.
// - PATH: ':path' is indexed unless it carries a query string: gRPC methods and REST routes
//   repeat, query strings mostly do not.
const POLICY_NEVER = 1;
const POLICY_NO_INDEX = 2;
const POLICY_COOKIE = 3;
const POLICY_PATH = 4;

const POLICY: ReadonlyMap<string, number> = new Map([
  ['authorization', POLICY_NEVER],
  ['proxy-authorization', POLICY_NEVER],
  ['cookie', POLICY_COOKIE],
  [':path', POLICY_PATH],
  ['content-length', POLICY_NO_INDEX],
  ['content-range', POLICY_NO_INDEX],
  ['date', POLICY_NO_INDEX],
  ['age', POLICY_NO_INDEX],
  ['expires', POLICY_NO_INDEX],
  ['etag', POLICY_NO_INDEX],
  ['last-modified', POLICY_NO_INDEX],
  ['if-modified-since', POLICY_NO_INDEX],
  ['if-none-match', POLICY_NO_INDEX],
  ['if-unmodified-since', POLICY_NO_INDEX],
  ['grpc-timeout', POLICY_NO_INDEX],
  ['x-request-id', POLICY_NO_INDEX],
  ['traceparent', POLICY_NO_INDEX],
  ['tracestate', POLICY_NO_INDEX],
  ['x-b3-traceid', POLICY_NO_INDEX],
  ['x-b3-spanid', POLICY_NO_INDEX],
  ['x-b3-parentspanid', POLICY_NO_INDEX],
  ['l5d-ctx-trace', POLICY_NO_INDEX],
  ['x-amzn-trace-id', POLICY_NO_INDEX],
  ['x-cloud-trace-context', POLICY_NO_INDEX],
]);

const SHORT_COOKIE = 20;

// Blocks are built here and copied out once. encode() runs to completion synchronously, so one
// buffer serves every encoder in the process instead of 4 KB held by each idle connection.
let scratch = Buffer.allocUnsafeSlow(4096);

/** The block the last encodeBlock() wrote (up to the length it returned). */
export function encodedBlock(): Buffer {
  return scratch;
}

/** What the dynamic table holds for one name: value → insertion number, and the newest one. */
interface DynamicName {
  readonly values: Map<string, number>;
  newest: number;
}

/** The ring's first size; it doubles from there as the table fills. */
const INITIAL_SLOTS = 8;

export class HpackEncoder {
  /** Our own cap (the constructor's maxTableSize). */
  private readonly cap: number;
  private readonly huffman: boolean;
  /** The size the peer's decoder uses for our table: min(peer's setting, cap). */
  private limit: number;
  /** Size updates to emit at the start of the next block (RFC 7541 4.2): the smallest size set
   * since the last block, then the final one; -1 when nothing is pending. */
  private pendingMin = -1;
  private tableSize = 0;
  // Entries are numbered by insertion; entry n is in the table iff evicted <= n < inserted, its
  // HPACK index is 61 + inserted - n, and it lives in ring slot n % slots. Numbers rather than
  // positions keep the Map below valid as entries come and go.
  private inserted = 0;
  private evicted = 0;
  // The ring starts empty and doubles when full, up to maxSlots (as the decoder's).
  private readonly maxSlots: number;
  private ringNames: string[] = [];
  private ringValues: string[] = [];
  private readonly byName = new Map<string, DynamicName>();
  private off = 0;

  constructor(opts?: HpackEncoderOptions) {
    this.cap = opts?.maxTableSize ?? 4096;
    this.huffman = opts?.huffman ?? false;
    // The peer's decoder starts at the protocol default of 4096.
    this.limit = Math.min(4096, this.cap);
    if (this.limit !== 4096) this.pendingMin = this.limit;
    this.maxSlots = Math.max(1, Math.floor(this.cap / ENTRY_OVERHEAD));
  }

  setMaxTableSize(n: number): void {
    const next = Math.min(n, this.cap);
    if (next === this.limit && this.pendingMin < 0) return;
    if (this.pendingMin < 0 || next < this.pendingMin) this.pendingMin = next;
    this.limit = next;
    this.evictTo(next);
  }

  encode(headers: readonly string[]): Buffer {
    const n = this.encodeBlock(headers);
    const out = Buffer.allocUnsafe(n);
    scratch.copy(out, 0, 0, n);
    return out;
  }

  /**
   * Encodes into the process's shared block buffer and returns the length: the block is
   * `encodedBlock()` up to it, valid until the next encode by any encoder. The frame writer
   * copies it straight into its slab (no Buffer made and copied per block).
   */
  encodeBlock(headers: readonly string[]): number {
    this.off = 0;
    if (this.pendingMin >= 0) {
      this.ensure(12);
      if (this.pendingMin < this.limit) this.writeInt(0x20, 5, this.pendingMin);
      this.writeInt(0x20, 5, this.limit);
      this.pendingMin = -1;
    }
    for (let i = 0; i + 1 < headers.length; i += 2) this.encodeField(headers[i]!, headers[i + 1]!);
    return this.off;
  }

  private encodeField(name: string, value: string): void {
    // Integer prefixes and lengths take at most 5 octets each; Huffman is used only when shorter.
    this.ensure(name.length + value.length + 16);
    // Values are compared, not looked up by hash, where that is cheaper: a fresh value string
    // (a cookie, a user agent) would be hashed whole on every request just to find it.
    const stat = STATIC_BY_NAME.get(name);
    if (stat !== undefined) {
      const vs = stat.valueList;
      for (let k = 0; k < vs.length; k++) if (vs[k] === value) return this.writeInt(0x80, 7, stat.valueIndex[k]!);
    }
    const dyn = this.byName.get(name);
    if (dyn !== undefined) {
      // A field repeated on a connection mostly repeats its last value.
      if (this.ringValues[dyn.newest % this.ringValues.length] === value) return this.writeInt(0x80, 7, STATIC_COUNT + this.inserted - dyn.newest);
      const n = dyn.values.get(value);
      if (n !== undefined) return this.writeInt(0x80, 7, STATIC_COUNT + this.inserted - n);
    }
    const nameIndex = stat !== undefined ? stat.index : dyn !== undefined ? STATIC_COUNT + this.inserted - dyn.newest : 0;
    const size = name.length + value.length + ENTRY_OVERHEAD;
    let prefix = 0x40; // with incremental indexing
    switch (POLICY.get(name)) {
      case POLICY_NEVER:
        prefix = 0x10;
        break;
      case POLICY_COOKIE:
        if (value.length < SHORT_COOKIE) prefix = 0x10;
        break;
      case POLICY_NO_INDEX:
        prefix = 0x00;
        break;
      case POLICY_PATH:
        if (value.indexOf('?') >= 0) prefix = 0x00;
        break;
    }
    // An entry taking most of the table would evict everything else for one header (nghttp2 and
    // HAProxy draw the same line at 3/4).
    if (prefix === 0x40 && size * 4 > this.limit * 3) prefix = 0x00;
    if (prefix === 0x40) this.writeInt(0x40, 6, nameIndex);
    else this.writeInt(prefix, 4, nameIndex);
    if (nameIndex === 0) this.writeString(name);
    this.writeString(value);
    if (prefix === 0x40) this.insert(name, value, size);
  }

  private insert(name: string, value: string, size: number): void {
    this.evictTo(this.limit - size);
    if (this.inserted - this.evicted === this.ringNames.length) this.grow();
    const n = this.inserted++;
    const slot = n % this.ringNames.length;
    this.ringNames[slot] = name;
    this.ringValues[slot] = value;
    this.tableSize += size;
    let dyn = this.byName.get(name);
    if (dyn === undefined) {
      dyn = { values: new Map(), newest: n };
      this.byName.set(name, dyn);
    }
    dyn.values.set(value, n);
    dyn.newest = n;
  }

  /** A ring twice as large (up to maxSlots): each live entry n moves to slot n % the new size. */
  private grow(): void {
    const size = Math.min(this.maxSlots, Math.max(INITIAL_SLOTS, this.ringNames.length * 2));
    const names = new Array<string>(size).fill('');
    const values = new Array<string>(size).fill('');
    const old = this.ringNames.length;
    for (let n = this.evicted; n < this.inserted; n++) {
      names[n % size] = this.ringNames[n % old]!;
      values[n % size] = this.ringValues[n % old]!;
    }
    this.ringNames = names;
    this.ringValues = values;
  }

  private evictTo(limit: number): void {
    while (this.tableSize > limit) {
      const n = this.evicted++;
      const slot = n % this.ringNames.length;
      const name = this.ringNames[slot]!;
      const value = this.ringValues[slot]!;
      this.ringNames[slot] = '';
      this.ringValues[slot] = '';
      this.tableSize -= name.length + value.length + ENTRY_OVERHEAD;
      const dyn = this.byName.get(name)!;
      // The newest entry of a name going means all of its entries are gone (FIFO); otherwise
      // only this value's entry, unless the same value was inserted again since.
      if (dyn.newest === n) this.byName.delete(name);
      else if (dyn.values.get(value) === n) dyn.values.delete(value);
    }
  }

  private writeInt(firstByte: number, prefixBits: number, value: number): void {
    const mask = (1 << prefixBits) - 1;
    const buf = scratch;
    if (value < mask) {
      buf[this.off++] = firstByte | value;
      return;
    }
    buf[this.off++] = firstByte | mask;
    value -= mask;
    while (value >= 0x80) {
      buf[this.off++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[this.off++] = value;
  }

  private writeString(s: string): void {
    const len = s.length;
    if (this.huffman && len > 0) {
      const hlen = huffmanEncodedLength(s);
      if (hlen < len) {
        this.writeInt(0x80, 7, hlen);
        this.off = huffmanEncode(s, scratch, this.off);
        return;
      }
    }
    this.writeInt(0, 7, len);
    const buf = scratch;
    // Short strings are copied in JS; a call into C++ costs more than the loop below ~32 chars.
    if (len < 32) {
      let off = this.off;
      for (let i = 0; i < len; i++) buf[off++] = s.charCodeAt(i);
      this.off = off;
    } else {
      this.off += buf.write(s, this.off, 'latin1');
    }
  }

  private ensure(n: number): void {
    if (this.off + n <= scratch.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(scratch.length * 2, this.off + n));
    scratch.copy(bigger, 0, 0, this.off);
    scratch = bigger;
  }
}
