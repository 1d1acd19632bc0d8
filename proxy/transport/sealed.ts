// A mesh session's records after the handshake, sealed and opened here instead
// of by Node's TLS socket (the addon's native/sealed.c says why and how). The
// handshake, the certificate checks and the identities stay Node's and
// OpenSSL's; at handshake-done the record state is cut out of OpenSSL, Node's
// TLS layer is taken off the TCP socket (its OpenSSL state freed), and the
// session speaks through the TCP socket it was dialled or accepted on: the same
// net.Socket, so everything that accounts for, drains or resets that socket
// keeps working. Records stay standard TLS 1.3 records.
//
// Only sessions carrying HTTP/2 (shared HTTP sessions and tunnels) are sealed:
// their one reader and writer is the HTTP/2 connection (h2/connection.ts),
// which reads views and writes whole turns. Per-connection mTLS (opaque,
// Upgrade, not-yet-detected) keeps Node's TLS socket and its stream interface.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SEALED_ALERT, SEALED_BAD_RECORD, SEALED_CLOSE_NOTIFY, SEALED_MALFORMED, SEALED_NOTHING, SEALED_RECORD_MAX, SEALED_UPDATE_DUE, SEALED_WIRE_MAX,
  sealedClose, sealedCut, sealedOpen, sealedRekeyAfter, sealedSeal, sealedSize, type SealedState,
} from '../../native/index.js';
import { ProxyError } from '../errors.js';
import { takeReadViews, type Placer, type Sink } from './reads.js';

/** What the handshake established, kept for the session's life (the TLS socket is gone). */
export interface SessionFacts {
  /** The peer's identity: the one DNS name of its verified certificate. */
  peerIdentity: string;
  /** When the first of the two certificates that authenticated the session expires (ms since the epoch; NaN: unknown). */
  expiresAt: number;
}

const channels = new WeakMap<Socket, SealedChannel>();

/** The sealed channel a session socket speaks through, if it is one. */
export function sealedOf(socket: Socket): SealedChannel | undefined {
  return channels.get(socket);
}

/**
 * Output buffers, shared by every channel: a sealed turn usually leaves in one write that the
 * kernel takes at once, and its buffer is free again for the next. A write the socket has to
 * keep (the kernel's buffer is full) keeps its buffer until the socket has written everything
 * ('drain'); then it returns here. A few are kept: more than that is garbage for V8, whose
 * external-memory accounting turns a stream of fresh buffers into full collections.
 */
const OUT_SIZE = 256 * 1024;
/**
 * Plaintext sealed into one output buffer at most: whole records (a turn's frames are cut at
 * any byte: records need not follow frames). A longer turn (a tunnel whose app socket had
 * several 64 KiB reads ready in one turn) is sealed into several, written as one writev.
 * Each used to get a fresh buffer of its own size: 100-140 MB/s of ArrayBuffers in opaque bulk,
 * which V8 counts toward its next full collection (transport/chunks.ts says how).
 */
const PLAIN_PER_OUT = wholeRecordsWithin(OUT_SIZE);
/** 4 MiB: a busy session's socket may hold a long turn's several buffers until 'drain'; those come back here. */
const OUT_KEPT = 16;
const freeOut: Buffer[] = [];
const EMPTY = Buffer.alloc(0);

/** Buffers for records split across reads (each as long as the longest record), kept the same way. */
const GATHER_KEPT = 8;
const freeGather: Buffer[] = [];

/** The most plaintext whose records fit in `wire` bytes, in whole records. */
function wholeRecordsWithin(wire: number): number {
  let plain = Math.floor(wire / SEALED_RECORD_MAX) * SEALED_RECORD_MAX;
  while (sealedSize(plain) > wire) plain -= SEALED_RECORD_MAX;
  return plain;
}

function release(pool: Buffer[], b: Buffer, kept: number): void {
  if (pool.length < kept) pool.push(b);
}

/** Lets the spare buffers go (the proxy gives memory back once load falls: proxy/memory.ts). */
export function dropSealedBuffers(): void {
  freeOut.length = 0;
  freeGather.length = 0;
}

interface TcpHandle {
  reading?: boolean;
}
interface TlsHandle {
  readStop(): number;
  readStart(): number;
  destroySSL(): void;
}

/** The events node:tls listens to on the TCP socket under a TLS socket. */
const TLS_EVENTS = ['close', 'error', 'connect', 'end'] as const;
export type Listeners = Map<string, Array<(...args: unknown[]) => void>>;

/** The TCP socket's listeners for those events, taken just before TLS is put on it. */
export function listenersOf(raw: Socket): Listeners {
  const m: Listeners = new Map();
  for (const e of TLS_EVENTS) m.set(e, raw.listeners(e) as Array<(...args: unknown[]) => void>);
  return m;
}

/** Taken just after TLS was put on `raw`: the listeners it added there (removed when it comes off). */
export function addedSince(raw: Socket, before: Listeners): Listeners {
  const m: Listeners = new Map();
  for (const e of TLS_EVENTS) {
    const had = new Set(before.get(e));
    m.set(e, (raw.listeners(e) as Array<(...args: unknown[]) => void>).filter((l) => !had.has(l)));
  }
  return m;
}

/**
 * At handshake-done, synchronously (inside Node's handshake callback, before OpenSSL reads
 * anything more): the channel that carries the session over `raw` from now on, or undefined
 * when the records cannot be taken over (the session then stays on `tls`). Node's TLS layer
 * comes off `raw` a loop turn later, outside OpenSSL's stack; until then writes wait in order
 * and nothing is read. `tlsListeners`: what node:tls added on `raw` (addedSince).
 */
export function sealSession(tls: TLSSocket, raw: Socket, tlsListeners: Listeners, facts: SessionFacts, onReady?: (ch: SealedChannel) => void): SealedChannel | undefined {
  const handle = (tls as unknown as { _handle?: TlsHandle & { _parent?: unknown } })._handle;
  const tcp = (raw as unknown as { _handle?: TcpHandle })._handle;
  if (handle == null || tcp == null || handle._parent !== tcp || typeof handle.destroySSL !== 'function') return undefined;
  const cut = sealedCut(handle);
  if (cut === undefined) return undefined;
  // Node's TLS layer reads no more (OpenSSL has read up to the handshake's end; what came
  // after it is in cut.in), and nothing in node:tls may start it again before it comes off.
  handle.readStop();
  handle.readStart = noRead;
  const ch = new SealedChannel(raw, cut.state, facts);
  channels.set(raw, ch);
  setImmediate(() => {
    // A TLS socket destroyed meanwhile (the dialler gave up) freed its OpenSSL state itself.
    if (!tls.destroyed) handle.destroySSL();
    delete (handle as Partial<TlsHandle>).readStart;
    detach(tls);
    // The TCP handle is read by nobody now; its flag still says TLS was reading it.
    tcp.reading = false;
    for (const [e, added] of tlsListeners) for (const l of added) raw.removeListener(e, l);
    // An error the TLS socket still emits (it is never used again) has a listener.
    tls.removeAllListeners();
    tls.on('error', noError);
    ch.ready(cut.out, cut.in);
    onReady?.(ch);
  });
  return ch;
}

const noRead = (): number => 0;
const noError = (): void => {};

/**
 * node:tls leaves the TCP handle a `reading` accessor (not configurable) whose closure keeps the
 * TLS socket alive as long as the handle: the socket is emptied instead, down to the one field
 * that accessor reads (its TLSWrap, `res`, replaced by a plain flag), so its TLSWrap and what
 * else it held are freed.
 */
function detach(tls: TLSSocket): void {
  const t = tls as unknown as Record<string | symbol, unknown>;
  const res = Object.getOwnPropertySymbols(tls).find((k) => k.description === 'res');
  if (res !== undefined) t[res] = { reading: false };
  t._handle = null;
  t.ssl = null;
  t._tlsOptions = null;
  t._parent = null;
}

/** Why a channel gave up on the peer's records. */
function recordError(code: number): ProxyError {
  const what = code === SEALED_BAD_RECORD ? 'a record failed authentication (bad_record_mac)'
    : code === SEALED_MALFORMED ? 'a malformed record'
    : code === SEALED_ALERT ? 'the peer sent a fatal alert'
    : 'an unexpected record';
  return new ProxyError('MESH_TLS_RECORD', `mTLS session: ${what}`);
}

export class SealedChannel {
  #ready = false;
  /** Plaintext written before the channel was ready, in order. */
  #queued: Buffer[] | null = [];
  #sink: Sink | null = null;
  #reading = false;
  /** Plaintext a reader gave back (unshift): the next sink gets it first. */
  #held: Buffer | null = null;
  /** A record split across reads: its bytes so far (`#have` of them), sized to the record once its header is in. */
  #gather: Buffer | null = null;
  #have = 0;
  /** The peer's close_notify came: what follows is not the session's. */
  #peerClosed = false;
  #failed = false;
  #ended = false;
  /** Where the next record's plaintext should land (the rest of a DATA frame being gathered), asked per record. */
  #place: Placer | null = null;
  /** Output buffers the socket still holds (written in part, the rest queued). */
  #busy: Buffer[] | null = null;

  constructor(readonly socket: Socket, private readonly state: SealedState, readonly facts: SessionFacts) {}

  readonly #onDrain = (): void => {
    const busy = this.#busy;
    if (busy === null || this.socket.writableLength !== 0) return;
    this.#busy = null;
    for (const b of busy) release(freeOut, b, OUT_KEPT);
  };

  readonly #onClose = (): void => {
    // What the socket held when it closed is not reused (nothing says Node let go of it).
    this.#busy = null;
    if (this.#gather !== null) release(freeGather, this.#gather, GATHER_KEPT);
    this.#gather = null;
  };

  /** Node's TLS layer is off the socket: the handshake's last bytes go out, then what waited; reading starts if asked for. */
  ready(out: Buffer | undefined, pending: Buffer | undefined): void {
    this.#ready = true;
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.on('drain', this.#onDrain);
    socket.once('close', this.#onClose);
    if (out !== undefined) socket.write(out);
    const queued = this.#queued!;
    this.#queued = null;
    if (queued.length > 0) this.write(queued);
    if (this.#ended) this.#sendEnd();
    if (pending !== undefined) this.#onCipher(pending);
    if (this.#sink !== null) this.#startReading();
  }

  /**
   * Every read's plaintext, as views valid during the call (the bytes a reader keeps, it
   * copies). A second call re-targets it; held plaintext is delivered first, at once.
   * null: plaintext is held until the next reader. `place`: where a record's plaintext should
   * land instead (asked before each record; a region the sink recognises in push, as with
   * takeReadViews).
   */
  listen(sink: Sink | null, place: Placer | null = null): void {
    this.#sink = sink;
    this.#place = sink === null ? null : place;
    if (sink === null) return;
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      sink(held);
    }
    if (this.#ready && !this.#reading) this.#startReading();
  }

  /** Plaintext a reader took and does not own (bytes after a header it parsed): the next sink gets it first. */
  unshift(plain: Buffer): void {
    if (plain.length === 0) return;
    this.#held = this.#held === null ? Buffer.from(plain) : Buffer.concat([plain, this.#held]);
  }

  /** Plaintext that came with no reader to take it: kept, after what is already held. */
  #hold(view: Buffer): void {
    this.#held = this.#held === null ? Buffer.from(view) : Buffer.concat([this.#held, view]);
  }

  /** Whether write() seals what it is given before it returns (once the channel is set up): the caller may then reuse it. */
  get sealsAtOnce(): boolean {
    return this.#ready;
  }

  /** Seals and writes: false when the socket asks the writer to wait for 'drain'. */
  write(data: Buffer | readonly Buffer[]): boolean {
    if (!this.#ready) {
      const q = this.#queued!;
      if (Buffer.isBuffer(data)) q.push(data);
      else for (const b of data) q.push(b);
      return true;
    }
    const socket = this.socket;
    if (socket.destroyed || this.#ended) return false;
    let total = 0;
    if (Buffer.isBuffer(data)) total = data.length;
    else for (let i = 0; i < data.length; i++) total += data[i]!.length;
    if (total <= PLAIN_PER_OUT) {
      const out = freeOut.pop() ?? Buffer.allocUnsafe(OUT_SIZE);
      const ok = socket.write(out.subarray(0, sealedSeal(this.state, data, out)));
      this.#settle(out);
      return ok;
    }
    // Several output buffers, one writev.
    const outs: Buffer[] = [];
    const parts = Buffer.isBuffer(data) ? [data] : data;
    let piece: Buffer[] = [];
    let room = PLAIN_PER_OUT;
    let ok = true;
    socket.cork();
    for (let i = 0; i < parts.length; i++) {
      let b = parts[i]!;
      while (b.length > 0) {
        const take = Math.min(room, b.length);
        if (take === b.length) {
          piece.push(b);
          b = EMPTY;
        } else {
          piece.push(b.subarray(0, take));
          b = b.subarray(take);
        }
        room -= take;
        if (room === 0) {
          ok = this.#sealOut(piece, outs);
          piece = [];
          room = PLAIN_PER_OUT;
        }
      }
    }
    if (piece.length > 0) ok = this.#sealOut(piece, outs);
    socket.uncork();
    for (let i = 0; i < outs.length; i++) this.#settle(outs[i]!);
    return ok;
  }

  #sealOut(piece: readonly Buffer[], outs: Buffer[]): boolean {
    const out = freeOut.pop() ?? Buffer.allocUnsafe(OUT_SIZE);
    outs.push(out);
    return this.socket.write(out.subarray(0, sealedSeal(this.state, piece, out)));
  }

  /** An output buffer just written: free again if the socket wrote everything, else kept until 'drain'. */
  #settle(out: Buffer): void {
    if (this.socket.writableLength === 0) {
      // Everything written, this and what the socket held before.
      release(freeOut, out, OUT_KEPT);
      if (this.#busy !== null) this.#onDrain();
    } else {
      (this.#busy ??= []).push(out);
    }
  }

  /** A KeyUpdate once this many records went out under one key (default 2^24: RFC 8446 §5.5's margin for AES-GCM). */
  rekeyAfter(records: number): void {
    sealedRekeyAfter(this.state, records);
  }

  /** Our direction ends: close_notify, then FIN. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#ready) this.#sendEnd();
  }

  #sendEnd(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    const out = Buffer.allocUnsafe(24);
    socket.end(out.subarray(0, sealedClose(this.state, out)));
  }

  #startReading(): void {
    this.#reading = true;
    if (!takeReadViews(this.socket, this.#onCipher)) this.socket.on('data', this.#onCipher);
  }

  /** Ciphertext as read: views valid during the call. Whole records are opened where they lie. */
  readonly #onCipher = (c: Buffer): void => {
    if (this.#failed) return;
    let off = 0;
    const end = c.length;
    if (this.#gather !== null) {
      off = this.#fill(c);
      if (off < 0 || this.#gather !== null) return;
    }
    while (off < end) {
      const left = end - off;
      const len = left < 5 ? 0 : 5 + ((c[off + 3]! << 8) | c[off + 4]!);
      if (len > SEALED_WIRE_MAX) return this.#fail(SEALED_MALFORMED);
      if (left < 5 || left < len) {
        const g = (this.#gather = freeGather.pop() ?? Buffer.allocUnsafe(SEALED_WIRE_MAX));
        c.copy(g, 0, off, end);
        this.#have = left;
        return;
      }
      if (!this.#open(c, off, len)) return;
      off += len;
    }
  };

  /** Continues a split record; the offset after what it used, -1 when the channel failed. */
  #fill(c: Buffer): number {
    const g = this.#gather!;
    let used = 0;
    if (this.#have < 5) {
      used = Math.min(5 - this.#have, c.length);
      c.copy(g, this.#have, 0, used);
      this.#have += used;
      if (this.#have < 5) return used;
    }
    const len = 5 + ((g[3]! << 8) | g[4]!);
    if (len > SEALED_WIRE_MAX) {
      this.#fail(SEALED_MALFORMED);
      return -1;
    }
    const n = Math.min(len - this.#have, c.length - used);
    c.copy(g, this.#have, used, used + n);
    this.#have += n;
    used += n;
    if (this.#have < len) return used;
    this.#gather = null;
    const ok = this.#open(g, 0, len);
    // Its plaintext was handed over as views during #open: the buffer is free again.
    release(freeGather, g, GATHER_KEPT);
    return ok ? used : -1;
  }

  /** Opens one whole record and delivers its plaintext; false when the channel failed. */
  #open(buf: Buffer, off: number, len: number): boolean {
    // The rest of a DATA frame being gathered takes the plaintext where it belongs, when all of
    // the record's inner plaintext fits there (its content type byte lands in the frame's next
    // byte, overwritten by the next record): nothing is copied.
    const into = this.#place === null || this.#peerClosed ? null : this.#place();
    if (into !== null && into.length >= len - 21) {
      const n = sealedOpen(this.state, buf, off, len, into);
      if (n > 0) {
        this.#deliver(into.subarray(0, n));
        return !this.#failed;
      }
      return this.#code(n);
    }
    const n = sealedOpen(this.state, buf, off, len);
    if (n > 0) {
      if (!this.#peerClosed) this.#deliver(buf.subarray(off + 5, off + 5 + n));
      return !this.#failed;
    }
    return this.#code(n);
  }

  /** A record that carried no application bytes: handled, or the channel fails. */
  #code(n: number): boolean {
    if (n === 0 || n === SEALED_NOTHING) return true;
    if (n === SEALED_UPDATE_DUE) {
      // The peer updated its key and asks for ours: an empty write carries the KeyUpdate.
      this.write([]);
      return true;
    }
    if (n === SEALED_CLOSE_NOTIFY) {
      this.#peerClosed = true;
      return true;
    }
    this.#fail(n);
    return false;
  }

  #deliver(view: Buffer): void {
    const sink = this.#sink;
    if (sink !== null) sink(view);
    else this.#hold(view);
  }

  #fail(code: number): void {
    this.#failed = true;
    this.#gather = null;
    this.socket.destroy(recordError(code));
  }
}
