// HTTP/2 framing (RFC 9113 §4, §6): constants, a streaming frame reader over
// socket Buffers and a frame writer into one growable output slab.
//
// The reader is fed views of a read buffer that the next read overwrites; it
// hands out DATA payloads as copies of their own (gathered whole across reads,
// or read in place) and other payloads as views valid during the call; a frame
// split across reads is copied, once, into a buffer of exactly its size.
// The writer appends every frame of a loop turn to one slab so the turn leaves
// in a single socket write; written regions are never reused (the socket may
// still hold them), and an idle connection drops its slab.
import { Buffer } from 'node:buffer';
import { CHUNK_BYTES, CHUNK_MIN, handOut, lendCopy, spentBytes, takeChunk } from '../transport/chunks.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

export const DEFAULT_WINDOW = 65535;
export const MAX_WINDOW = 0x7fffffff;
export const DEFAULT_MAX_FRAME = 16384;
export const MAX_FRAME_LIMIT = 0xffffff;
export const HEADER_SIZE = 9;

// Error codes used below; the full list is in message/types.ts.
const PROTOCOL_ERROR = 0x1;
const FRAME_SIZE_ERROR = 0x6;

export interface FrameSink {
  /** One complete frame. `payload` is a view valid for as long as the caller keeps it. */
  onFrame(type: number, flags: number, id: number, payload: Buffer): void;
}

/**
 * Splits a byte stream into frames. push() returns 0, or a connection error code.
 *
 * Pushed chunks are views of a read buffer that the next read overwrites
 * (transport/reads.ts), so what outlives push() is copied. A DATA payload is copied
 * once, whole (gathered across reads when split), so a bulk stream's 64 KiB frame
 * reaches its receiver as one chunk instead of a part per TLS record (16 KiB): a
 * quarter of the writes to the app's socket, each a trip through the kernel's TCP
 * stack. Other frames are handed over as views: the connection decodes them at once
 * and copies what it keeps (CONTINUATION parts). While a long DATA frame is gathered,
 * readInto() names the rest of it, so the socket's next read can land there (TLS
 * decrypts straight into it) and nothing is copied: push() recognises a chunk that is
 * that region.
 */
export class FrameReader {
  /** Our SETTINGS_MAX_FRAME_SIZE: a longer frame is a FRAME_SIZE_ERROR (§4.2). */
  maxFrameSize = DEFAULT_MAX_FRAME;
  /**
   * Long DATA frames are gathered in recycled chunks (transport/chunks.ts), handed out with
   * their payload: for a session whose every stream's reader spends what it is given (a
   * tunnel's joins). Elsewhere a chunk would outlive its use in a body forwarded on, 4x
   * the size of an app's 16 KiB frame.
   */
  recycle = false;
  #pend: Buffer | null = null; // a frame split across reads: header first, then exactly its size
  /** The recycled chunk #pend lies in, when it does. */
  #chunk: Buffer | null = null;
  #have = 0;
  #stopped = false;

  constructor(private readonly sink: FrameSink) {}

  /** No more frames are delivered (the connection failed or closed). */
  stop(): void {
    this.#stopped = true;
    // Not given back: the socket's next read may already be set to land in it (readInto).
    this.#pend = this.#chunk = null;
  }

  /**
   * Where the next read should land: the rest of a DATA frame being gathered, when at
   * least IN_PLACE_MIN bytes of it are still to come (a shorter rest is copied from the
   * shared buffer: a read that small saves little); null otherwise. The connection asks
   * only for TLS sockets (H2Connection.listen).
   */
  readInto(): Buffer | null {
    const p = this.#pend;
    if (p === null || this.#have < HEADER_SIZE || p[3] !== DATA || p.length - this.#have < IN_PLACE_MIN) return null;
    return p.subarray(this.#have);
  }

  /** Bytes of an incomplete frame held (tests, accounting). */
  get pending(): number {
    return this.#pend === null ? 0 : this.#have;
  }

  push(chunk: Buffer): number {
    let off = 0;
    const end = chunk.length;
    const p = this.#pend;
    if (p !== null && chunk.buffer === p.buffer && chunk.byteOffset === p.byteOffset + this.#have && end > 0) {
      // A read that landed where readInto() said: the bytes are in place (never past the frame's end).
      this.#have += end;
      if (this.#have === p.length) this.#deliver(p);
      return 0;
    }
    while (off < end) {
      if (this.#pend !== null) {
        off = this.#fill(chunk, off);
        if (off < 0) return FRAME_SIZE_ERROR;
        if (this.#stopped) return 0;
        continue;
      }
      if (end - off < HEADER_SIZE) {
        this.#pend = Buffer.allocUnsafe(HEADER_SIZE);
        chunk.copy(this.#pend, 0, off, end);
        this.#have = end - off;
        return 0;
      }
      const len = (chunk[off]! << 16) | (chunk[off + 1]! << 8) | chunk[off + 2]!;
      if (len > this.maxFrameSize) return this.#fail();
      const next = off + HEADER_SIZE + len;
      const type = chunk[off + 3]!;
      const flags = chunk[off + 4]!;
      const id = chunk.readUInt32BE(off + 5) & 0x7fffffff; // the reserved bit is ignored (§4.1)
      if (next <= end) {
        // A DATA payload outlives the call (queued, or written to a socket later): a copy.
        const payload = type === DATA ? this.#dataOf(chunk, off + HEADER_SIZE, next) : chunk.subarray(off + HEADER_SIZE, next);
        this.sink.onFrame(type, flags, id, payload);
        if (this.#stopped) return 0;
        off = next;
      } else {
        this.#pend = this.#frameBuffer(type, len);
        chunk.copy(this.#pend, 0, off, end);
        this.#have = end - off;
        return 0;
      }
    }
    return 0;
  }

  #fail(): number {
    this.stop();
    return FRAME_SIZE_ERROR;
  }

  /** Continues a split frame from `off`; returns the offset after what it used, or -1 on an oversized frame. */
  #fill(chunk: Buffer, off: number): number {
    let p = this.#pend!;
    let used = off;
    if (this.#have < HEADER_SIZE) {
      const n = Math.min(HEADER_SIZE - this.#have, chunk.length - used);
      chunk.copy(p, this.#have, used, used + n);
      this.#have += n;
      used += n;
      if (this.#have < HEADER_SIZE) return used;
      const len = (p[0]! << 16) | (p[1]! << 8) | p[2]!;
      if (len > this.maxFrameSize) {
        this.stop();
        return -1;
      }
      if (p.length !== HEADER_SIZE + len) {
        const full = this.#frameBuffer(p[3]!, len);
        p.copy(full, 0, 0, HEADER_SIZE);
        this.#pend = p = full;
      }
    }
    const n = Math.min(p.length - this.#have, chunk.length - used);
    chunk.copy(p, this.#have, used, used + n);
    this.#have += n;
    used += n;
    if (this.#have === p.length) this.#deliver(p);
    return used;
  }

  /** A whole DATA payload in a read, copied: into a recycled chunk when long and recycling. */
  #dataOf(b: Buffer, start: number, end: number): Buffer {
    const len = end - start;
    return this.recycle && len >= CHUNK_MIN && len <= CHUNK_BYTES ? lendCopy(b, start, end) : copyOf(b, start, end);
  }

  /** Where a frame of `len` payload bytes is gathered: a recycled chunk for a long DATA frame when recycling. */
  #frameBuffer(type: number, len: number): Buffer {
    if (this.recycle && type === DATA && len >= CHUNK_MIN && HEADER_SIZE + len <= CHUNK_BYTES) {
      const c = (this.#chunk = takeChunk());
      return c.subarray(0, HEADER_SIZE + len);
    }
    return Buffer.allocUnsafe(HEADER_SIZE + len);
  }

  /** The gathered frame `p` is complete. */
  #deliver(p: Buffer): void {
    this.#pend = null;
    const payload = p.subarray(HEADER_SIZE);
    const c = this.#chunk;
    if (c !== null) {
      this.#chunk = null;
      handOut(c, payload.length);
    }
    this.sink.onFrame(p[3]!, p[4]!, p.readUInt32BE(5) & 0x7fffffff, payload);
  }
}

/** Bytes [start, end) of `b` in memory of their own (Node's pool when short). */
function copyOf(b: Buffer, start: number, end: number): Buffer {
  const c = Buffer.allocUnsafe(end - start);
  c.set(b.subarray(start, end));
  return c;
}

/**
 * Checks a frame's stream id and length for its type (§6). Returns 0 when
 * fine, else a connection error code. Unknown types pass (they are ignored).
 */
export function frameError(type: number, flags: number, id: number, len: number): number {
  switch (type) {
    case DATA:
    case HEADERS:
    case CONTINUATION:
      return id === 0 ? PROTOCOL_ERROR : 0;
    case PRIORITY:
      return id === 0 ? PROTOCOL_ERROR : 0; // a wrong length is a stream error, handled by the caller
    case RST_STREAM:
      return id === 0 ? PROTOCOL_ERROR : len !== 4 ? FRAME_SIZE_ERROR : 0;
    case SETTINGS:
      if (id !== 0) return PROTOCOL_ERROR;
      return (flags & FLAG_ACK) !== 0 ? (len !== 0 ? FRAME_SIZE_ERROR : 0) : len % 6 !== 0 ? FRAME_SIZE_ERROR : 0;
    case PUSH_PROMISE:
      return PROTOCOL_ERROR; // we send ENABLE_PUSH=0, and a client may never push
    case PING:
      return id !== 0 ? PROTOCOL_ERROR : len !== 8 ? FRAME_SIZE_ERROR : 0;
    case GOAWAY:
      return id !== 0 ? PROTOCOL_ERROR : len < 8 ? FRAME_SIZE_ERROR : 0;
    case WINDOW_UPDATE:
      return len !== 4 ? FRAME_SIZE_ERROR : 0;
    default:
      return 0;
  }
}

/**
 * The content of a DATA or HEADERS payload without padding (and, for HEADERS,
 * without the priority fields); null when the padding is longer than the
 * payload (a PROTOCOL_ERROR, §6.1).
 */
export function unpad(type: number, flags: number, payload: Buffer): Buffer | null {
  let start = 0;
  let end = payload.length;
  if ((flags & FLAG_PADDED) !== 0) {
    if (end < 1) return null;
    end -= payload[0]!;
    start = 1;
  }
  if (type === HEADERS && (flags & FLAG_PRIORITY) !== 0) start += 5;
  if (end < start) return null;
  return start === 0 && end === payload.length ? payload : payload.subarray(start, end);
}

const SLAB = 16 * 1024;
/**
 * A slab started after release() (a quiet connection's turn) is what the turn needs and this
 * much more, while that stays under half of Buffer.poolSize: Node carves such buffers from its
 * shared pool (8 KiB unless changed).
 * At 1,000 requests/s over a few connections every request's turn started a fresh 16 KiB slab, an
 * ArrayBuffer each, a third of all the ArrayBuffers the proxy made; V8 frees dead ones inside
 * the young-generation pause (measured: 0.7 of its ~1 ms), so each one lengthens it.
 */
const FRESH_SLACK = 1024;
const KEEP_LIMIT = 64 * 1024;
/**
 * A DATA payload at least this long that the caller hands over (it will not change the
 * bytes: a tunnel's socket reads, the stream's own queued copies) is written as it is
 * after its frame header, not copied into the slab: bulk tunnels copied every byte once
 * more and grew a new slab each turn, most of their garbage.
 */
const HANDED_OVER_MIN = 4096;

/** The shortest rest of a DATA frame that readInto() offers for a read to land in. */
const IN_PLACE_MIN = 4096;

/** Appends frames to one output slab; take() hands the pending bytes to a single socket write. */
export class FrameWriter {
  #buf: Buffer | null = null;
  #start = 0;
  #pos = 0;
  /** Pieces ready in order (slab regions and handed-over payloads) when a payload was handed over. */
  #parts: Buffer[] | null = null;
  #partBytes = 0;

  /** Bytes written and not yet taken. */
  get pending(): number {
    return this.#partBytes + this.#pos - this.#start;
  }

  /** The pending bytes as one Buffer, from now on owned by the socket; null when there are none. */
  take(): Buffer | null {
    const out = this.takeParts();
    return out === null || Buffer.isBuffer(out) ? out : Buffer.concat(out);
  }

  /**
   * The pending bytes, from now on owned by the socket: one Buffer, or the pieces in order
   * when payloads were handed over (for one corked write); null when there are none.
   */
  takeParts(): Buffer | Buffer[] | null {
    const parts = this.#parts;
    if (parts !== null) {
      this.#parts = null;
      this.#cut(parts);
      this.#partBytes = 0;
      this.#keepOrDrop();
      return parts;
    }
    if (this.#pos === this.#start) return null;
    const out = this.#buf!.subarray(this.#start, this.#pos);
    this.#start = this.#pos;
    this.#keepOrDrop();
    return out;
  }

  /** The slab's pending region as a piece of `parts`. */
  #cut(parts: Buffer[]): void {
    if (this.#pos === this.#start) return;
    parts.push(this.#buf!.subarray(this.#start, this.#pos));
    this.#partBytes += this.#pos - this.#start;
    this.#start = this.#pos;
  }

  #keepOrDrop(): void {
    // A slab grown by a large burst is not kept: the next turn starts small.
    if (this.#buf !== null && this.#buf.length > KEEP_LIMIT) this.#buf = null;
  }

  /** Drops the slab (an idle connection keeps no output memory). */
  release(): void {
    if (this.#pos === this.#start) this.#buf = null;
  }

  /** Reserves a frame of `len` payload bytes (only its header when `withPayload` is false); returns the payload's offset. */
  #frame(len: number, type: number, flags: number, id: number, withPayload = true): number {
    const need = withPayload ? HEADER_SIZE + len : HEADER_SIZE;
    let b = this.#buf;
    if (b === null || this.#pos + need > b.length) {
      // Pending bytes move to the new slab so a turn still leaves in one write.
      const pending = b === null ? 0 : this.#pos - this.#start;
      const small = pending + need + FRESH_SLACK;
      // A full slab of a busy connection is replaced by a full-size one; a fresh or pooled one stays pooled while it can.
      const nb = Buffer.allocUnsafe((b === null || b.length < SLAB) && small < Buffer.poolSize >>> 1 ? small : Math.max(SLAB, (pending + need) * 2));
      if (pending > 0) b!.copy(nb, 0, this.#start, this.#pos);
      this.#buf = b = nb;
      this.#start = 0;
      this.#pos = pending;
    }
    const p = this.#pos;
    b[p] = len >>> 16;
    b[p + 1] = (len >>> 8) & 0xff;
    b[p + 2] = len & 0xff;
    b[p + 3] = type;
    b[p + 4] = flags;
    b.writeUInt32BE(id, p + 5);
    this.#pos = p + need;
    return p + HEADER_SIZE;
  }

  /** `handedOver`: the caller will not change chunk's bytes, so a long payload is not copied. */
  data(id: number, chunk: Buffer, from: number, len: number, endStream: boolean, handedOver = false): void {
    if (handedOver && len >= HANDED_OVER_MIN) {
      this.#frame(len, DATA, endStream ? FLAG_END_STREAM : 0, id, false);
      const parts = (this.#parts ??= []);
      this.#cut(parts);
      parts.push(from === 0 && len === chunk.length ? chunk : chunk.subarray(from, from + len));
      this.#partBytes += len;
      return;
    }
    const at = this.#frame(len, DATA, endStream ? FLAG_END_STREAM : 0, id);
    if (len === 0) return;
    chunk.copy(this.#buf!, at, from, from + len);
    // A short slice of a handed-over recycled chunk (what a window left): copied, so spent.
    if (handedOver) spentBytes(chunk, len);
  }

  /** A header block, block[0, length) (default: all of it), as HEADERS plus CONTINUATION frames of at most `maxFrame` bytes. */
  headers(id: number, block: Buffer, endStream: boolean, maxFrame: number, length = block.length): void {
    let off = 0;
    let type = HEADERS;
    do {
      const n = Math.min(maxFrame, length - off);
      const last = off + n === length;
      let flags = last ? FLAG_END_HEADERS : 0;
      if (type === HEADERS && endStream) flags |= FLAG_END_STREAM;
      const at = this.#frame(n, type, flags, id);
      block.copy(this.#buf!, at, off, off + n);
      off += n;
      type = CONTINUATION;
    } while (off < length);
  }

  rst(id: number, code: number): void {
    const at = this.#frame(4, RST_STREAM, 0, id); // #frame may replace the slab: read #buf after it
    this.#buf!.writeUInt32BE(code, at);
  }

  /** SETTINGS from a flat [id, value, id, value, ...] list. */
  settings(list: readonly number[]): void {
    let at = this.#frame(list.length * 3, SETTINGS, 0, 0);
    const b = this.#buf!;
    for (let i = 0; i < list.length; i += 2) {
      b.writeUInt16BE(list[i]!, at);
      b.writeUInt32BE(list[i + 1]!, at + 2);
      at += 6;
    }
  }

  settingsAck(): void {
    this.#frame(0, SETTINGS, FLAG_ACK, 0);
  }

  ping(ack: boolean, opaque: Buffer): void {
    const at = this.#frame(8, PING, ack ? FLAG_ACK : 0, 0);
    opaque.copy(this.#buf!, at, 0, 8);
  }

  goaway(lastId: number, code: number, debug: string): void {
    const d = Buffer.from(debug, 'latin1');
    const at = this.#frame(8 + d.length, GOAWAY, 0, 0);
    const b = this.#buf!;
    b.writeUInt32BE(lastId, at);
    b.writeUInt32BE(code, at + 4);
    d.copy(b, at + 8);
  }

  windowUpdate(id: number, increment: number): void {
    const at = this.#frame(4, WINDOW_UPDATE, 0, id);
    this.#buf!.writeUInt32BE(increment, at);
  }

  /** Bytes as they are (the client preface). */
  bytes(b: Buffer): void {
    const at = this.#frame(b.length - HEADER_SIZE, 0, 0, 0) - HEADER_SIZE;
    b.copy(this.#buf!, at);
  }

  /** A raw frame (tests and the fuzzer build arbitrary, even invalid, frames with it). */
  raw(type: number, flags: number, id: number, payload: Buffer): void {
    const at = this.#frame(payload.length, type, flags, id);
    payload.copy(this.#buf!, at);
  }
}

/** One frame as bytes (tests and tools). */
export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const w = new FrameWriter();
  w.raw(type, flags, id, payload);
  return Buffer.from(w.take()!);
}
