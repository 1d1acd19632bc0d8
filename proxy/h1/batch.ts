// What one HTTP/1 connection writes in an event-loop turn leaves in one
// socket write: heads, chunk framing and small body chunks are copied into a
// small per-turn buffer, and a single setImmediate per turn writes every
// connection's buffer. (process.nextTick would flush after every socket
// callback and batch nothing across sockets.) Copying a few hundred bytes
// costs less than what Node's stream does per write: corked writes each
// queue an entry, and uncorking builds a writev with strings to encode.
// Large chunks are not copied: the buffer goes first, then the chunk, in order,
// on a socket corked until the end of the turn (so a turn's large writes
// still report "full" past the socket's high-water mark, as before).
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';

/** Chunks at least this big are written as they are (after what is buffered). */
const DIRECT = 8192;
/** Buffered bytes beyond this go out at once rather than at the end of the turn. */
const FLUSH_AT = 65536;
/**
 * First buffer of a turn: what the first write needs and this much more. Node carves buffers
 * under 4 KiB from its shared 8 KiB pool, so a turn's buffer costs no ArrayBuffer of its own;
 * sized to the turn rather than a fixed 2 KiB, a pool serves ~16 quiet turns instead of 4.
 * (V8 frees each dead ArrayBuffer inside the young-generation pause: fewer of them is a
 * shorter pause for whichever request it lands on.)
 */
const FIRST_SLACK = 256;

/**
 * A list this long or shorter is kept between turns, emptied slot by slot: `length = 0` gives
 * V8's array its backing store back, and the next turn's first push allocated a new one (a
 * quarter of a KB a request at light load). A burst's longer list is let go.
 */
const KEEP_QUEUED = 1024;

let pending: (H1Output | undefined)[] = [];
let pendingCount = 0;
let spare: (H1Output | undefined)[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  const list = pending;
  const n = pendingCount;
  pending = spare;
  pendingCount = 0;
  for (let i = 0; i < n; i++) {
    const o = list[i]!;
    list[i] = undefined; // the connection may close: the list must not keep it
    o.queued = false;
    o.flush();
    o.uncork();
  }
  if (n > KEEP_QUEUED) list.length = 0;
  spare = list;
}

/** One connection's output. The buffer exists only during a turn that wrote something. */
export class H1Output {
  queued = false;
  #corked = false;
  #buf: Buffer | null = null;
  #pos = 0;

  constructor(readonly socket: Socket) {}

  /** Latin-1 text (heads, chunk sizes, trailers). */
  text(s: string): void {
    this.#room(s.length).latin1Write(s, this.#pos);
    this.#pos += s.length;
    if (this.#pos > FLUSH_AT) this.flush();
  }

  /** Body bytes; false when the socket asks the writer to wait for 'drain'. */
  bytes(chunk: Buffer): boolean {
    if (chunk.length >= DIRECT) {
      this.flush();
      if (!this.#corked) {
        this.#corked = true;
        this.socket.cork();
        this.#queue();
      }
      return this.socket.write(chunk);
    }
    chunk.copy(this.#room(chunk.length), this.#pos);
    this.#pos += chunk.length;
    if (this.#pos > FLUSH_AT) return this.flush();
    return !this.socket.writableNeedDrain;
  }

  /** Writes what is buffered now (before end(), a hand-over, or when the buffer is full). */
  flush(): boolean {
    const b = this.#buf;
    if (b === null) return !this.socket.writableNeedDrain;
    const n = this.#pos;
    this.#buf = null;
    this.#pos = 0;
    // The socket owns these bytes from here; the next turn starts a new buffer.
    if (this.socket.destroyed) return false;
    return this.socket.write(n === b.length ? b : b.subarray(0, n));
  }

  /** Ends a turn's corking (large chunks): Node writes them in one writev. */
  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    if (this.socket.writableCorked > 0) this.socket.uncork();
  }

  /** Everything out now: before end(), or before the socket is handed over. */
  flushNow(): void {
    this.flush();
    this.uncork();
  }

  #queue(): void {
    if (this.queued) return;
    this.queued = true;
    pending[pendingCount++] = this;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushAll);
    }
  }

  /** Drops what is buffered (the connection is being destroyed). */
  discard(): void {
    this.#buf = null;
    this.#pos = 0;
  }

  #room(n: number): Buffer & { latin1Write(s: string, offset: number): number } {
    let b = this.#buf;
    if (b === null) {
      b = Buffer.allocUnsafe(n + FIRST_SLACK);
      this.#buf = b;
      this.#queue();
    } else if (this.#pos + n > b.length) {
      const nb = Buffer.allocUnsafe(Math.max(b.length * 2, this.#pos + n));
      b.copy(nb, 0, 0, this.#pos);
      this.#buf = b = nb;
    }
    return b as Buffer & { latin1Write(s: string, offset: number): number };
  }
}
