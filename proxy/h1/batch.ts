// Writes of one event-loop turn leave in one writev per socket: a socket
// written to is corked once, and a single setImmediate per turn uncorks all
// of them. (process.nextTick would flush after every socket callback and batch
// nothing across sockets; a head and its first body chunk, or many pipelined
// responses, would each be a syscall.)
import type { Socket } from 'node:net';

export interface Batched {
  readonly socket: Socket;
  corked: boolean;
}

let enabled = true;
/** Measurement only: writes go straight to the socket (to compare syscalls and throughput). */
export function setBatching(on: boolean): void {
  enabled = on;
}

let pending: Batched[] = [];
let spare: Batched[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const list = pending;
  pending = spare;
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    c.corked = false;
    if (c.socket.writableCorked > 0) c.socket.uncork();
  }
  list.length = 0;
  spare = list;
}

/** Call before writing: the writes of this turn are gathered until its end. */
export function batch(c: Batched): void {
  if (c.corked || !enabled) return;
  c.corked = true;
  c.socket.cork();
  pending.push(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}
