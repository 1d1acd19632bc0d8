// Reading a socket without its Readable stream. Node reads every chunk into a
// fresh ArrayBuffer (a 64 KiB allocation cut down to the read's size) and then
// runs it through the Readable machinery ('data' emit, state updates, a tick
// to read more). Node also offers a user-buffer path (`onread`, public for
// sockets it dials): each read lands in one buffer of ours and a callback gets
// it synchronously. The codecs take every socket that way:
//   - measured on this VM (a TLS and a plain ping-pong, 50 connections): 0.7-1.2 µs
//     less CPU per read on a plain socket and 1.0-1.9 µs on a TLS one, 6-10% of the
//     server's cost per request;
//   - one ArrayBuffer less per read. V8 frees dead ArrayBuffers inside the
//     young-generation pause (proxy/h2/frames.ts), and these were 2 of the 2.2
//     per request per proxy at 1,000 req/s.
// Every read is copied out of the shared buffer (into Node's Buffer pool when
// small) before anyone sees it: codecs keep slices of what they read (a partial
// head, a body chunk queued behind a slow writer), and the shared buffer is
// overwritten by the next read of any socket.
//
// Accepted and TLS sockets have no public option for this; Node's own state
// for it is three symbol-keyed fields on every net.Socket, found once here on
// a socket made with the public option. Where they are missing (another Node,
// or a test's stand-in socket) the caller listens to 'data' as before.
import { Buffer } from 'node:buffer';
import { Socket } from 'node:net';

export type Sink = (chunk: Buffer) => void;

/**
 * For a sink of views: where the socket's next read should land, asked after each read.
 * A region the sink owns (the rest of a frame it is gathering): the read's bytes are then
 * already where the sink wants them and it copies nothing. null: the shared buffer.
 */
export type Placer = () => Buffer | null;

interface Keys {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

/** Big enough for the largest read Node asks for (64 KiB). */
const READ_BUFFER_SIZE = 64 * 1024;
let shared: Buffer | undefined;
/** Its memory, kept: reading `.buffer` off a Buffer is a call into V8's runtime. */
let sharedMemory: ArrayBuffer | undefined;

const keys: Keys | undefined = findKeys();

function findKeys(): Keys | undefined {
  try {
    // `onread` is documented for net.connect()/new Socket() but missing from @types/node's constructor options.
    const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as ConstructorParameters<typeof Socket>[0]);
    const own = Object.getOwnPropertySymbols(probe);
    const named = (name: string): symbol | undefined => own.find((s) => s.description === name);
    const buffer = named('kBuffer');
    const callback = named('kBufferCb');
    const generator = named('kBufferGen');
    probe.destroy();
    if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
    return { buffer, callback, generator };
  } catch {
    return undefined;
  }
}

type Fields = Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Buffer) => void } | null };

/** Sockets whose reads go to a sink of ours. */
const takenSockets = new WeakSet<Socket>();

/** Whether the socket's reads already go to a sink of ours (takeReads succeeded on it). */
export function readsTaken(socket: Socket): boolean {
  return takenSockets.has(socket);
}

/**
 * Sends every read of `socket` to `sink`, in order: first what its Readable
 * already holds (bytes read before, or put back by detection), then each new
 * read. As with a 'data' listener, reading starts unless the socket was
 * paused; pause()/resume() stop and restart it (Node's net.Socket handles
 * them for this path); 'end', 'error' and 'close' are emitted as before.
 * Calling it again re-targets the reads. Returns false, having done nothing,
 * where the path is not available: the caller then listens to 'data'.
 */
export function takeReads(socket: Socket, sink: Sink): boolean {
  return take(socket, sink, false, null);
}

/**
 * As takeReads, but each read reaches `sink` as a view that is valid only during the call:
 * of the shared buffer, which the next read of any socket overwrites, or of the region
 * `place` gave for it. The sink copies what it keeps. Nothing a sink calls reads a socket
 * synchronously: reads come only from the event loop's poll phase.
 */
export function takeReadViews(socket: Socket, sink: Sink, place: Placer | null = null): boolean {
  return take(socket, sink, true, place);
}

function take(socket: Socket, sink: Sink, views: boolean, place: Placer | null): boolean {
  if (keys === undefined || !(socket instanceof Socket)) return false;
  const f = socket as unknown as Fields;
  const handle = f._handle;
  const taken = readsTaken(socket);
  // No handle yet while connecting is fine: Node installs the buffer when it makes one.
  // No handle otherwise (destroyed), or a handle without the method: left to 'data'.
  if (!taken && (handle == null ? !socket.connecting : typeof handle.useUserBuffer !== 'function')) return false;
  if (shared === undefined) {
    sharedMemory = new ArrayBuffer(READ_BUFFER_SIZE);
    shared = Buffer.from(sharedMemory);
  }
  // Node calls the callback with the buffer the read landed in (the shared one, or the
  // region `place` gave), and then the generator, if any, for the next read's buffer.
  f[keys.callback] = views
    ? (n: number, into: Buffer): void => {
        sink(into.subarray(0, n));
      }
    : (n: number, into: Buffer): void => {
        sink(copyOut(n, into));
      };
  const gen = place === null ? null : (): Buffer => place() ?? shared!;
  if (taken) {
    f[keys.generator] = gen;
    if (gen === null) backToShared(f);
    return true;
  }
  takenSockets.add(socket);
  f[keys.generator] = gen; // null, not undefined, when there is none: Node calls anything else
  f[keys.buffer] = shared;
  if (handle != null) handle.useUserBuffer!(shared);
  // Bytes the Readable took in before: delivered first, in one piece. read(n) with the
  // length: it returns them all whether or not the stream is flowing.
  const held = socket.readableLength;
  if (held > 0) {
    const chunk = socket.read(held) as Buffer | null;
    if (chunk !== null) sink(chunk);
  }
  // As a 'data' listener would: reading starts unless the owner paused the socket.
  if (socket.readableFlowing !== false && !socket.destroyed) socket.resume();
  return true;
}

/**
 * Gives a socket whose reads were taken to code that listens for 'data' (a
 * tunnel after Upgrade/CONNECT, a pipe): each read is emitted as 'data'. The
 * handle cannot go back to Node's own buffers; pause()/resume() keep working.
 */
export function readsAsEvents(socket: Socket): void {
  if (!readsTaken(socket)) return;
  const f = socket as unknown as Fields;
  f[keys!.generator] = null;
  backToShared(f);
  f[keys!.callback] = (n: number, into: Buffer): void => {
    socket.emit('data', copyOut(n, into));
  };
}

/** A region a placer gave stays its owner's: with no placer any more, reads land in the shared buffer again. */
function backToShared(f: Fields): void {
  if (f[keys!.buffer] === shared) return;
  f[keys!.buffer] = shared;
  f._handle?.useUserBuffer?.(shared!);
}

// `into` is the buffer the read landed in (Node hands back the one it was given): the shared
// one but for a read a placer placed. TypedArray set() from a fresh view of the kept memory:
// ~30% faster than Buffer#copy for a 90-byte read (no argument checks, no `.buffer` call).
function copyOut(n: number, into: Buffer): Buffer {
  const c = Buffer.allocUnsafe(n);
  c.set(into === shared ? new Uint8Array(sharedMemory!, 0, n) : into.subarray(0, n));
  return c;
}
