// Where an accepted connection was going. REDIRECT rewrote the destination,
// so the kernel's conntrack entry is asked (native addon); TPROXY kept it, so
// the accepted socket's own local address is the answer.
import type { Socket } from 'node:net';
import { NativeError, originalDestination, type SocketAddress } from '../native/index.js';
import type { InboundMode } from './config.js';

export type Direction = 'inbound' | 'outbound';

export type TargetErrorCode = 'MESH_NO_ORIGINAL_DST' | 'MESH_TARGET_IS_PROXY';

export class TargetError extends Error {
  constructor(readonly code: TargetErrorCode | NativeError['code'], message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

/** A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; we speak of them as IPv4. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function fromSocket(socket: Socket): SocketAddress {
  const address = plainAddress(socket.localAddress ?? '');
  return { address, port: socket.localPort ?? 0, family: address.includes(':') ? 6 : 4 };
}

function redirected(socket: Socket): SocketAddress {
  try {
    return originalDestination(socket);
  } catch (err) {
    const e = err as NativeError;
    throw new TargetError(e.code, e.message);
  }
}

/**
 * The original destination of a connection, refusing one that points back at
 * this proxy's own port: that is a client dialling the proxy directly, or a
 * redirect loop (a proxy not running as the uid mesh-init skips).
 */
export function originalTarget(socket: Socket, direction: Direction, mode: InboundMode, ownPort: number): SocketAddress {
  const target = direction === 'inbound' && mode === 'tproxy' ? fromSocket(socket) : redirected(socket);
  if (target.port === ownPort && (direction === 'inbound' || isLoopback(target.address))) {
    throw new TargetError('MESH_TARGET_IS_PROXY', `connection is addressed to the proxy itself (${target.address}:${target.port})`);
  }
  return target;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}
