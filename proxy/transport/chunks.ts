// Bulk bytes in recycled chunks. A tunnel moves its bytes in pieces of up to
// 64 KiB: a read from the app's socket on its way into DATA frames, a DATA
// frame on its way to the app's socket. Each piece used to be an ArrayBuffer
// of its own, and the piece lives until its write is done, which under
// backpressure is several young collections: it is promoted and dies old.
// V8 11 counts the external memory allocated since the last full collection
// against the old generation's limit (Heap::OldGenerationSpaceAvailable), and
// with ~11 MB of live heap that limit leaves 8-10 MB of slack. Measured (opaque
// bulk through both proxies, --trace-gc): process.memoryUsage().arrayBuffers
// swung between 3 and 28 MB within 50 ms, and V8 started a full collection
// every 100-300 ms (~20 per GiB each way, 30-50 ms of marking each), ~12% of
// the server proxy's CPU by perf.
//
// A chunk is taken from a free list instead, its bytes handed out, and given
// back once every handed-out byte was spent: written by the app socket (the
// write's callback), or sealed into a TLS record (sealing copies). A chunk
// nobody spends (a stream reset with bytes queued, a body forwarded to an
// HTTP/1 socket) is simply collected, as before: forgetting is safe,
// spending too early is not, so only the two places that know the bytes are
// gone call spent().
import { Buffer } from 'node:buffer';

/** A 64 KiB socket read, or a 64 KiB DATA frame (the mesh's largest) with its 9-byte header. */
export const CHUNK_BYTES = 64 * 1024 + 16;
/**
 * What a socket read placed in a chunk is given (armChunk): one mesh DATA frame. A chunk is 16
 * bytes longer (for a frame's header on the reading side), and a read given all of it came in
 * at 65,552 bytes in bulk: a 64 KiB frame and a 16-byte one, so the server proxy wrote every
 * read to its app in two write()s (strace: 3,421 of 16 bytes in 3 s).
 */
export const READ_SPAN = 64 * 1024;
/**
 * The shortest piece put in a chunk: a shorter one gets memory of its own size, since a chunk
 * held for it (queued behind a paused reader, or a stream's window) would hold over twice its bytes.
 */
export const CHUNK_MIN = CHUNK_BYTES >>> 1;
/** Chunks kept on the free list at most (4 MiB): what bulk through a few streams keeps in flight. */
const FREE_MAX = 64;

interface Lent {
  chunk: Buffer;
  /** Handed-out bytes not spent yet. */
  left: number;
}

const free: Buffer[] = [];
let recycled = 0;
// Keyed by the memory, not the view: a consumer spends views of its own (a frame's payload,
// a part of a split chunk). Weak: a chunk nobody spends takes its entry with it.
const lent = new WeakMap<ArrayBufferLike, Lent>();

/** A chunk of CHUNK_BYTES, to fill and then hand out (or give back). */
export function takeChunk(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

/** `n` bytes of `chunk` (taken above) go out; the chunk returns once views covering `n` bytes were spent. */
export function handOut(chunk: Buffer, n: number): void {
  if (n <= 0) return giveBack(chunk);
  lent.set(chunk.buffer, { chunk, left: n });
}

/** `src[start, end)` (at most CHUNK_BYTES) copied into a chunk and handed out: the copy, a view of it. */
export function lendCopy(src: Buffer, start: number, end: number): Buffer {
  const c = takeChunk();
  src.copy(c, 0, start, end);
  handOut(c, end - start);
  return c.subarray(0, end - start);
}

// A socket's read can land in a chunk directly (transport/reads.ts Placer), saving the copy
// out of the shared read buffer (perf, opaque bulk: memmove 6.1% of the server proxy's CPU
// before, 0.8% after; the client's 3.2% to 1.5%). Node asks
// for the next read's buffer right after each read, so a chunk placed for a socket that
// then falls idle stays with it until its next read or its close. Such "armed" chunks
// are capped for the whole process: past the cap a read lands in the shared buffer and
// is copied as before, so idle connections hold at most ARMED_MAX chunks between them.
const ARMED_MAX = 64;
let armed = 0;
let landedLong = 0;

/**
 * The first READ_SPAN bytes of a chunk, for a socket's next read to land in; undefined when
 * ARMED_MAX are out already.
 */
export function armChunk(): Buffer | undefined {
  if (armed >= ARMED_MAX) return undefined;
  armed++;
  return takeChunk().subarray(0, READ_SPAN);
}

/** The whole chunk a span from armChunk lies in (a chunk is memory of its own, from offset 0). */
function chunkOf(span: Buffer): Buffer {
  return Buffer.from(span.buffer, span.byteOffset, CHUNK_BYTES);
}

/**
 * A read of `n` bytes landed in `span` (from armChunk): the bytes, handed out in its chunk when
 * the read is long (CHUNK_MIN), else copied to memory of their own size and the chunk given back.
 */
export function landed(span: Buffer, n: number): Buffer {
  armed--;
  if (n >= CHUNK_MIN) {
    landedLong++;
    handOut(chunkOf(span), n);
    return span.subarray(0, n);
  }
  const own = Buffer.allocUnsafe(n);
  span.copy(own, 0, 0, n);
  giveBack(chunkOf(span));
  return own;
}

/** A span from armChunk that no read landed in (its socket closed): its chunk goes back. */
export function disarm(span: Buffer): void {
  armed--;
  giveBack(chunkOf(span));
}

/** Chunks armed for reads now, and long reads that landed in one so far (tests, accounting). */
export function armedChunks(): { armed: number; landed: number } {
  return { armed, landed: landedLong };
}

/** A chunk taken and not handed out after all. */
export function giveBack(chunk: Buffer): void {
  if (free.length < FREE_MAX) free.push(chunk);
}

/** Whether `view` lies in a handed-out chunk (so its holder may keep it rather than copy it). */
export function isLent(view: Buffer): boolean {
  return lent.has(view.buffer);
}

/**
 * The bytes of `view` are done with (written, or copied elsewhere). A view of anything but a
 * handed-out chunk is ignored. Each handed-out byte must be spent once only.
 */
export function spent(view: Buffer): void {
  spentBytes(view, view.length);
}

/** As spent(), for `n` bytes of the chunk `view` lies in (a slice copied elsewhere, without a view made for it). */
export function spentBytes(view: Buffer, n: number): void {
  const ab = view.buffer;
  const l = lent.get(ab);
  if (l === undefined) return;
  l.left -= n;
  if (l.left > 0) return;
  lent.delete(ab);
  recycled++;
  giveBack(l.chunk);
}

/** Chunks that came back after use so far (tests: recycling happens where it should). */
export function recycledChunks(): number {
  return recycled;
}

/** Every spent view in `views` (a flushed turn's pieces). */
export function spentAll(views: readonly Buffer[]): void {
  for (let i = 0; i < views.length; i++) spent(views[i]!);
}

/** Free chunks kept (tests, accounting). */
export function freeChunks(): number {
  return free.length;
}

/** The free list is dropped (the proxy gives memory back when it falls quiet). */
export function dropChunks(): void {
  free.length = 0;
}
