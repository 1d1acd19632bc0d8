// HPACK decoder (RFC 7541): one instance per connection direction, holding the dynamic table
// that the peer's encoder drives.
import { Buffer } from 'node:buffer';
import { huffmanDecode, huffmanDecodedBound } from './huffman.js';
import { STATIC_COUNT, STATIC_NAMES, STATIC_VALUES } from './static-table.js';

// Huffman output, shared by every decoder (decode() is synchronous and turns it into a string
// before returning); grown on demand.
let huffmanOut = Buffer.allocUnsafeSlow(1024);

export type HpackErrorCode = 'MESH_HPACK_DECODE' | 'MESH_HEADERS_TOO_LARGE';

/**
 * A header block that cannot be decoded. 'MESH_HPACK_DECODE' is a COMPRESSION_ERROR: the
 * dynamic table can no longer be trusted, so the whole connection goes. 'MESH_HEADERS_TOO_LARGE'
 * leaves the table in sync: only the stream is refused.
 */
export class HpackError extends Error {
  constructor(readonly code: HpackErrorCode, message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

/** RFC 7541 4.1: an entry costs its octets plus 32. */
export const ENTRY_OVERHEAD = 32;

// Integers larger than this are no valid index, length or table size for us, and stopping here
// keeps the arithmetic in small integers (a 2^31 limit would already be 2 GB of header).
const MAX_INT = 0x7fffffff;

export interface HpackDecoderOptions {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the most the peer may size the table to. Default 4096. */
  maxTableSize?: number;
  /** RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE: sum of name + value + 32. Default 65536. */
  maxHeaderListSize?: number;
}

/** The ring's first size; it doubles from there as the table fills. */
const INITIAL_SLOTS = 8;

export class HpackDecoder {
  private readonly maxTableSize: number;
  private readonly maxHeaderListSize: number;
  /** The size the peer last set, <= maxTableSize. */
  private tableLimit: number;
  /** Octets in the table, by RFC 7541's accounting. */
  private tableSize = 0;
  // The dynamic table as a ring: `head` is where the next entry goes, the newest entry
  // (HPACK index 62) sits just before it. Every entry costs >= 32, so the ring never needs more
  // than maxSlots = maxTableSize / 32 slots. It starts empty and doubles when full: a peer
  // proxy's few repeated fields need a dozen slots, and a full ring per idle connection was
  // ~1 KiB of each session.
  private readonly maxSlots: number;
  private names: string[] = [];
  private values: string[] = [];
  /** Per slot: 1 when the entry's value holds NUL, CR or LF (RFC 9113 §8.2.1 forbids them). */
  private badValue = new Uint8Array(0);
  private head = 0;
  /**
   * After decode(): no value in the block holds NUL, CR or LF. Literals are checked as they
   * are read, table entries carry the answer from when they were inserted, so a field that
   * repeats as an index is not scanned again on every message.
   */
  valuesOk = true;
  private count = 0;
  /** Read position in the block being decoded (a field, so integer reads need no tuples). */
  private pos = 0;

  constructor(opts?: HpackDecoderOptions) {
    this.maxTableSize = opts?.maxTableSize ?? 4096;
    this.maxHeaderListSize = opts?.maxHeaderListSize ?? 65536;
    this.tableLimit = this.maxTableSize;
    this.maxSlots = Math.max(1, Math.floor(this.maxTableSize / ENTRY_OVERHEAD));
  }

  /** Current dynamic table size by RFC 7541's accounting (for tests and the fuzzer). */
  get dynamicTableSize(): number {
    return this.tableSize;
  }

  /** Current dynamic table limit as last set by the peer. */
  get dynamicTableLimit(): number {
    return this.tableLimit;
  }

  /** Number of dynamic table entries. */
  get dynamicTableLength(): number {
    return this.count;
  }

  /** Dynamic entry `i` (1 = newest) as [name, value], for tests. */
  dynamicEntry(i: number): [string, string] | undefined {
    if (i < 1 || i > this.count) return undefined;
    const slot = this.slotOf(i - 1);
    return [this.names[slot]!, this.values[slot]!];
  }

  decode(block: Buffer, out: string[]): void {
    const end = block.length;
    let listSize = 0;
    let tooLarge = false;
    // Size updates are allowed only before the first field (RFC 7541 4.2).
    let fieldSeen = false;
    let valuesOk = true;
    this.pos = 0;
    while (this.pos < end) {
      const b = block[this.pos]!;
      let name: string;
      let value: string;
      if ((b & 0x80) !== 0) {
        // 6.1 Indexed field
        const index = this.readInt(block, 7);
        if (index === 0) throw decodeError('index 0');
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const slot = this.dynamicSlot(index);
          name = this.names[slot]!;
          value = this.values[slot]!;
          if (this.badValue[slot] === 1) valuesOk = false;
        }
      } else if ((b & 0xe0) === 0x20) {
        // 6.3 Dynamic table size update
        if (fieldSeen) throw decodeError('table size update after a field');
        const size = this.readInt(block, 5);
        if (size > this.maxTableSize) throw decodeError(`table size ${size} above our ${this.maxTableSize}`);
        this.tableLimit = size;
        this.evictTo(size);
        continue;
      } else {
        // 6.2 Literal field: with incremental indexing (01), without (0000) or never (0001)
        const indexing = (b & 0x40) !== 0;
        const nameIndex = this.readInt(block, indexing ? 6 : 4);
        if (nameIndex === 0) name = this.readString(block);
        else if (nameIndex <= STATIC_COUNT) name = STATIC_NAMES[nameIndex]!;
        else name = this.names[this.dynamicSlot(nameIndex)]!;
        value = this.readString(block);
        const bad = forbiddenInValue(value);
        if (bad) valuesOk = false;
        if (indexing) this.insert(name, value, bad);
      }
      fieldSeen = true;
      // Keep decoding past the limit: later fields may still change the dynamic table, and the
      // peer's encoder has already applied them.
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) tooLarge = true;
      else out.push(name, value);
    }
    this.valuesOk = valuesOk;
    if (tooLarge) {
      throw new HpackError('MESH_HEADERS_TOO_LARGE', `header list above ${this.maxHeaderListSize} octets`);
    }
  }

  /** RFC 7541 5.1 integer with an N-bit prefix, starting at this.pos. */
  private readInt(block: Buffer, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let pos = this.pos;
    let value = block[pos++]! & mask;
    if (value < mask) {
      this.pos = pos;
      return value;
    }
    let shift = 0;
    for (;;) {
      if (pos >= block.length) throw decodeError('truncated integer');
      const b = block[pos++]!;
      // Multiplication, not <<, so a large shift cannot wrap around before the check below.
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INT) throw decodeError('integer overflow');
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    this.pos = pos;
    return value;
  }

  /** RFC 7541 5.2 string literal at this.pos. */
  private readString(block: Buffer): string {
    if (this.pos >= block.length) throw decodeError('truncated string');
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const length = this.readInt(block, 7);
    const start = this.pos;
    const end = start + length;
    if (end > block.length) throw decodeError('truncated string');
    this.pos = end;
    if (!huffman) return block.toString('latin1', start, end);
    const bound = huffmanDecodedBound(length);
    if (huffmanOut.length < bound) huffmanOut = Buffer.allocUnsafeSlow(Math.max(bound, huffmanOut.length * 2));
    const n = huffmanDecode(block, start, end, huffmanOut);
    if (n < 0) throw decodeError('invalid Huffman string');
    return huffmanOut.toString('latin1', 0, n);
  }

  /** Ring slot of dynamic entry `d` (0 = newest). */
  private slotOf(d: number): number {
    const slot = this.head - 1 - d;
    return slot >= 0 ? slot : slot + this.names.length;
  }

  private dynamicSlot(index: number): number {
    const d = index - STATIC_COUNT - 1;
    if (d >= this.count) throw decodeError(`index ${index} beyond the table`);
    return this.slotOf(d);
  }

  private insert(name: string, value: string, bad: boolean): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // RFC 7541 4.4: an entry larger than the table empties it and is not added.
    if (size > this.tableLimit) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.tableLimit - size);
    if (this.count === this.names.length) this.grow();
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.badValue[this.head] = bad ? 1 : 0;
    this.head = this.head + 1 === this.names.length ? 0 : this.head + 1;
    this.count++;
    this.tableSize += size;
  }

  /** A ring twice as large (up to maxSlots), entries laid out oldest first from slot 0. */
  private grow(): void {
    const size = Math.min(this.maxSlots, Math.max(INITIAL_SLOTS, this.names.length * 2));
    const names = new Array<string>(size).fill('');
    const values = new Array<string>(size).fill('');
    const bad = new Uint8Array(size);
    for (let d = this.count - 1, j = 0; d >= 0; d--, j++) {
      const slot = this.slotOf(d);
      names[j] = this.names[slot]!;
      values[j] = this.values[slot]!;
      bad[j] = this.badValue[slot]!;
    }
    this.names = names;
    this.values = values;
    this.badValue = bad;
    this.head = this.count === size ? 0 : this.count;
  }

  /** Evicts the oldest entries until the table holds at most `limit` octets. */
  private evictTo(limit: number): void {
    while (this.tableSize > limit) {
      const slot = this.slotOf(this.count - 1);
      this.tableSize -= this.names[slot]!.length + this.values[slot]!.length + ENTRY_OVERHEAD;
      // Drop the references so evicted strings can be collected.
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }
}

const FORBIDDEN = /[\0\r\n]/;

/**
 * NUL, CR or LF in a field value (RFC 9113 §8.2.1; written on as HTTP/1 they would split
 * it). Long values: the regular expression's native scan is ~2x a charCodeAt loop.
 */
export function forbiddenInValue(v: string): boolean {
  if (v.length > 16) return FORBIDDEN.test(v);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return true;
  }
  return false;
}

function decodeError(what: string): HpackError {
  return new HpackError('MESH_HPACK_DECODE', `HPACK: ${what}`);
}
