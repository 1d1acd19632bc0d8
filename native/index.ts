// Typed access to the native addon (native/mesh_net.c). Everything that needs a
// socket option Node does not expose goes through here, and nowhere else.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Server, Socket } from 'node:net';

export interface SocketAddress {
  address: string;
  port: number;
  family: 4 | 6;
}

export type NativeErrorCode =
  | 'MESH_NATIVE_UNAVAILABLE'
  | 'MESH_NO_ORIGINAL_DST'
  | 'MESH_PERMISSION_DENIED'
  | 'MESH_BAD_SOCKET'
  | 'MESH_UNSUPPORTED'
  | 'MESH_SYSCALL_FAILED';

export class NativeError extends Error {
  constructor(readonly code: NativeErrorCode, message: string, readonly errno?: number) {
    super(message);
    this.name = 'NativeError';
  }
}

/** RLIMIT_NOFILE; Infinity where the kernel reports no limit. */
export interface FdLimit {
  soft: number;
  hard: number;
}

interface Binding {
  originalDestination(fd: number): SocketAddress;
  setTransparent(fd: number): void;
  resetOnClose(fd: number): void;
  raiseFdLimit(): FdLimit;
  trimMemory(): boolean;
  holdAllocatorPages(): boolean;
  memoryPressure(): void;
  releaseFilePages(): number;
  noSessionTickets(ctx: unknown): boolean;
  sealedWatch(ctx: unknown): boolean;
  sealedCut(tlsHandle: object): { state: SealedState; out?: Buffer; in?: Buffer } | null;
  sealedSeal(state: SealedState, pieces: Buffer | readonly Buffer[], out: Buffer): number;
  sealedOpen(state: SealedState, buf: Buffer, offset: number, length: number, into?: Buffer): number;
  sealedRekeyAfter(state: SealedState, records: number): void;
  sealedClose(state: SealedState, out: Buffer): number;
}

/** A session's record state (keys and sequence numbers, both ways), held by the addon. */
export type SealedState = { readonly __sealed: unique symbol };

// dist/native/index.js and native/index.ts both sit two levels below the package root.
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const candidates = [
  join(packageRoot, 'build', 'Release', 'mesh_net.node'),
  join(packageRoot, '..', 'build', 'Release', 'mesh_net.node'),
];

let binding: Binding | undefined;
let loadError = '';

function load(): Binding {
  if (binding) return binding;
  if (process.platform !== 'linux') {
    throw new NativeError('MESH_NATIVE_UNAVAILABLE', `the mesh native addon needs Linux (this is ${process.platform})`);
  }
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    try {
      binding = require(path) as Binding;
      return binding;
    } catch (err) {
      loadError = (err as Error).message;
    }
  }
  throw new NativeError(
    'MESH_NATIVE_UNAVAILABLE',
    `the mesh native addon is not built (run \`npm install\`, which needs python3, make and a C compiler): ${loadError}`,
  );
}

/** The descriptor behind a Node socket or server; Node keeps it on the libuv handle. */
export function fdOf(target: Socket | Server): number {
  const fd = (target as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new NativeError('MESH_BAD_SOCKET', 'socket has no file descriptor (closed, or not a TCP socket)');
  }
  return fd;
}

function call<T>(fn: (b: Binding) => T): T {
  const b = load();
  try {
    return fn(b);
  } catch (err) {
    const e = err as Error & { code?: string; errno?: number };
    throw new NativeError((e.code ?? 'MESH_SYSCALL_FAILED') as NativeErrorCode, e.message, e.errno);
  }
}

/** Where the peer meant to connect before iptables REDIRECT sent it to us. */
export function originalDestination(socket: Socket): SocketAddress {
  const fd = fdOf(socket);
  return call((b) => b.originalDestination(fd));
}

/** Lets a listener accept connections steered to it by the TPROXY target. */
export function setTransparent(target: Server | Socket): void {
  const fd = fdOf(target);
  call((b) => b.setTransparent(fd));
}

/** Arms SO_LINGER 0 so that closing `socket` sends a RST (for a TCP socket under TLS). */
export function resetOnClose(socket: Socket): void {
  const fd = fdOf(socket);
  call((b) => b.resetOnClose(fd));
}

/** Raises the soft descriptor limit to the hard one; returns the limits now in effect. */
export function raiseFdLimit(): FdLimit {
  return call((b) => b.raiseFdLimit());
}

/** Returns the C allocator's free pages to the kernel (glibc malloc_trim); true when some were. */
export function trimMemory(): boolean {
  return call((b) => b.trimMemory());
}

/**
 * glibc keeps what is freed (up to 64 MB at the top of its heap; allocations up to 4 MB from the
 * heap, not a mapping each) instead of trimming as it goes: under bulk traffic it gave pages back
 * and faulted them in again per read. The proxy trims itself when load falls (trimMemory).
 */
export function holdAllocatorPages(): boolean {
  return call((b) => b.holdAllocatorPages());
}

/**
 * Tells V8 memory is short: it starts an incremental, memory-reducing collection that runs in
 * slices over the next turns and hands free pages back (measured on a 62 MB heap: 0.4 ms for the
 * call, 16 ms the longest pause after it, against 35-41 ms for a full, blocking compaction).
 */
export function memoryPressure(): void {
  call((b) => b.memoryPressure());
}

/**
 * Unmaps the node executable's clean read-only pages from this process (they stay in the page
 * cache; a page used again returns by a minor fault): start-up touches ~40 MB of node's code and
 * data that an idle or busy proxy then leaves resident but mostly unused. The bytes released.
 */
export function releaseFilePages(): number {
  return call((b) => b.releaseFilePages());
}

/**
 * A server SecureContext sends no TLS 1.3 session tickets from now on (nobody resumes: each one
 * costs the server an encryption and the client ~2.5 KB it keeps). False when it could not (no
 * addon, no OpenSSL symbol, not a Node SecureContext): the tickets are then sent as before.
 */
export function noSessionTickets(context: unknown): boolean {
  return onContext(context, (b, ctx) => b.noSessionTickets(ctx));
}

/**
 * `fn` on the SSL_CTX behind a Node SecureContext (its `_external`); false when there is none
 * or the addon cannot (not loaded, no OpenSSL symbol).
 */
function onContext(context: unknown, fn: (b: Binding, ctx: unknown) => boolean): boolean {
  const external = (context as { context?: { _external?: unknown } } | undefined)?.context?._external;
  if (external === undefined) return false;
  try {
    return fn(load(), external);
  } catch {
    return false;
  }
}

/** True when the addon loads; for readiness checks and clear start-up errors. */
export function nativeAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

// ---- sealed records (native/sealed.c) ----

/**
 * The connections of a SecureContext (client or server) keep their TLS 1.3 traffic secrets for
 * sealedCut. False when they cannot (no addon or OpenSSL symbol, or Node logs this context's
 * keys): those connections stay on Node's TLS.
 */
export function sealedWatch(context: unknown): boolean {
  return onContext(context, (b, ctx) => b.sealedWatch(ctx));
}

/** What sealedCut hands over: the record state, and the bytes on either side of the cut. */
export interface SealedCut {
  state: SealedState;
  /** Handshake bytes OpenSSL produced and Node has not written yet: they go out first. */
  out: Buffer | undefined;
  /** Ciphertext that arrived after the handshake and OpenSSL has not read: opened first. */
  in: Buffer | undefined;
}

/**
 * At handshake-done (synchronously, inside Node's handshake callback), the records of the TLS
 * connection behind `tlsHandle` (a TLSSocket's _handle) for us to seal and open from here on;
 * undefined when not available (another cipher, secrets not kept, a server that sends tickets).
 */
export function sealedCut(tlsHandle: object): SealedCut | undefined {
  try {
    const c = load().sealedCut(tlsHandle);
    return c === null ? undefined : { state: c.state, out: c.out, in: c.in };
  } catch {
    return undefined;
  }
}

/** Plaintext carried by one record, and what a record costs beyond it (header, inner type, tag). */
export const SEALED_RECORD_MAX = 16384;
export const SEALED_RECORD_OVERHEAD = 22;
/** The longest record on the wire (RFC 8446 §5.2: 2^14 + 256 of ciphertext, and the header). */
export const SEALED_WIRE_MAX = 5 + 16384 + 256;

/** The room sealedSeal needs for `bytes` of plaintext (a KeyUpdate included). */
export function sealedSize(bytes: number): number {
  return bytes + Math.ceil(bytes / SEALED_RECORD_MAX) * SEALED_RECORD_OVERHEAD + 2 * SEALED_RECORD_OVERHEAD + 5;
}

/** Seals `pieces` (in order) as records into `out` (sealedSize long at least); the bytes written. */
export function sealedSeal(state: SealedState, pieces: Buffer | readonly Buffer[], out: Buffer): number {
  return binding!.sealedSeal(state, pieces, out);
}

/** sealedOpen's answers below zero. */
export const SEALED_CLOSE_NOTIFY = -1;
export const SEALED_NOTHING = -2;
export const SEALED_UPDATE_DUE = -3;
export const SEALED_BAD_RECORD = -4;
export const SEALED_MALFORMED = -5;
export const SEALED_UNEXPECTED = -6;
export const SEALED_ALERT = -7;

/**
 * Opens the one record at buf[offset, offset+length) in place: its application bytes at
 * offset+5, or a code. With `into` (room for length - 21 bytes at least), the plaintext lands
 * there instead, from into[0].
 */
export function sealedOpen(state: SealedState, buf: Buffer, offset: number, length: number, into?: Buffer): number {
  return binding!.sealedOpen(state, buf, offset, length, into);
}

/** Tests: a KeyUpdate once this many records went out under one key (default 2^24). */
export function sealedRekeyAfter(state: SealedState, records: number): void {
  binding!.sealedRekeyAfter(state, records);
}

/** A close_notify alert into `out` (at least 24 bytes); the bytes written. */
export function sealedClose(state: SealedState, out: Buffer): number {
  return binding!.sealedClose(state, out);
}
