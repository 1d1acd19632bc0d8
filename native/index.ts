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
}

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
  const external = (context as { context?: { _external?: unknown } } | undefined)?.context?._external;
  if (external === undefined) return false;
  try {
    return load().noSessionTickets(external);
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
