// Reads a connection's first bytes until they can be classified, then puts every byte
// back and leaves the socket paused, so whoever takes the socket over reads the stream
// from its first byte.
//
// Why 'readable' and not 'data': with 'data', a FIN surfaces only as 'end', and after
// 'end' unshift() fails (ERR_STREAM_UNSHIFT_AFTER_END_EVENT): the bytes of a client that
// sent a partial request and half-closed could not be replayed. Node emits 'readable' at
// end of stream *before* 'end', and never with an empty buffer otherwise, so a
// 'readable' that finds nothing to read is the FIN; bytes unshifted then keep 'end'
// behind them. One blind spot: a socket that had already received data *and* its FIN
// before detection started gives no such signal; it ends as 'timeout', bytes intact.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { MAX_TIMER_MS } from '../timers.js';
import { matchRequestLine } from './http.js';
import { EOF, ERROR, HTTP1, TIMEOUT, type Detected, type Verdict } from './verdict.js';

export type Classify = (prefix: Buffer, maxBytes: number) => Verdict;

export class Peek {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  /** A contiguous copy of the first ≤maxBytes bytes, once they came in more than one chunk. */
  private window: Buffer | undefined;
  private filled = 0;
  private copiedChunks = 0;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private startedAt = 0;
  /** The HTTP/1 deadline is armed (once, on the first bytes that begin a request line). */
  private httpArmed = false;
  /** The timer runs for the quiet window, not yet for the detect timeout. */
  private quietPhase = false;
  /** Counts arm() calls: an expiry queued behind others applies only to the arming that fired. */
  arming = 0;

  constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
    private readonly classify: Classify,
    private readonly resolve: (d: Detected) => void,
    /** A stream that began as an HTTP/1 request line gets this long in all (a request head's timeout). */
    private readonly httpTimeoutMs = Infinity,
    /**
     * Called once if the client has sent nothing this long after start (the
     * server-speaks-first window). Shares the one timer with the detect
     * timeout, so a client that speaks in time costs no second timer.
     */
    private readonly quiet?: { ms: number; onQuiet: () => void },
  ) {}

  /** Bytes read so far. */
  get received(): number {
    return this.length;
  }

  /** Ends detection now with `result` (every byte read is put back, as for any verdict). */
  abort(result: Detected): void {
    this.finish(result);
  }

  start(): void {
    const s = this.socket;
    if (s.destroyed) return this.finish(ERROR);
    if (s.readableEnded) return this.finish(EOF);
    s.on('readable', this.onReadable);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onError);
    this.startedAt = performance.now();
    if (this.quiet !== undefined && this.quiet.ms < this.timeoutMs) {
      this.quietPhase = true;
      this.arm(this.quiet.ms);
    } else this.arm(this.timeoutMs);
  }

  private arm(timeoutMs: number): void {
    this.arming++;
    const ms = Number.isFinite(timeoutMs) ? Math.min(Math.max(timeoutMs, 1), MAX_TIMER_MS) : MAX_TIMER_MS;
    this.timer = setTimeout(expire, ms, this);
  }

  private readonly onReadable = (): void => {
    const s = this.socket;
    if (s.readableLength === 0) return this.finish(EOF); // see the top of this file
    try {
      do {
        // An explicit size: read() without one schedules 'end' when it empties an ended stream.
        const chunk: Buffer | null = s.read(Math.min(s.readableLength, s.readableHighWaterMark));
        if (chunk === null) break;
        this.chunks.push(chunk);
        this.length += chunk.length;
      } while (s.readableLength > 0);
      const prefix = this.prefix();
      const verdict = this.classify(prefix, this.maxBytes);
      if (verdict.kind !== 'need-more') return this.finish(verdict);
      // A request line arriving a byte at a time (slowloris) is held to the
      // head timeout, counted from accept, not to the longer detect timeout
      // after which it would go on as opaque TCP with no timeout at all.
      if (!this.httpArmed && this.httpTimeoutMs <= this.timeoutMs && matchRequestLine(prefix) === 'need-more') {
        this.httpArmed = true;
        this.quietPhase = false;
        clearTimeout(this.timer);
        this.arm(this.startedAt + this.httpTimeoutMs - performance.now());
      }
    } catch {
      // Not expected; but a bug here must cost one connection its detection, not the process.
      this.finish(ERROR);
    }
  };

  // Only reached when nothing is held (see the top of this file).
  private readonly onEnd = (): void => this.finish(EOF);
  private readonly onError = (): void => this.finish(ERROR);

  expire(): void {
    // Queued behind other expiries, it may have finished meanwhile (its bytes classified, a close).
    if (this.done) return;
    this.timer = undefined;
    if (this.quietPhase) {
      this.quietPhase = false;
      this.arm(this.startedAt + this.timeoutMs - performance.now());
      if (this.length === 0) this.quiet!.onQuiet();
      return;
    }
    // Held to the head timeout and still the beginning of a request line:
    // HTTP/1, whose server answers the late head (408).
    if (this.httpArmed && matchRequestLine(this.prefix()) === 'need-more') return this.finish(HTTP1);
    this.finish(TIMEOUT);
  }

  /** The bytes to classify: the only chunk as is, else a window grown by doubling (O(n) copying overall). */
  private prefix(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const target = Math.min(this.length, this.maxBytes);
    if (this.window === undefined || this.window.length < target) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(target, 2 * (this.window?.length ?? 0), 256)));
      this.window?.copy(grown, 0, 0, this.filled);
      this.window = grown;
    }
    while (this.filled < target) this.filled += this.chunks[this.copiedChunks++]!.copy(this.window, this.filled);
    return this.window.subarray(0, this.filled);
  }

  private finish(result: Detected): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const s = this.socket;
    s.removeListener('readable', this.onReadable);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onError);
    // unshift() after 'end' would destroy the socket; a destroyed one drops the bytes anyway.
    if (this.length > 0 && !s.destroyed && !s.readableEnded) s.unshift(this.everything());
    s.pause();
    // Removing the 'readable' listener makes Node reset the flowing state on the next
    // tick, undoing pause(); settle after it so the socket is handed over explicitly
    // paused (and not resumed by the next 'data' listener before the owner is ready).
    process.nextTick(settle, this.socket, this.onError, this.resolve, result);
  }

  private everything(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0]!;
    if (this.window !== undefined && this.filled === this.length) return this.window.subarray(0, this.filled); // already contiguous
    return Buffer.concat(this.chunks, this.length);
  }
}

// Detection timers that fall due together (500 slow clients that connected in the same
// tens of milliseconds reach the head timeout together) are handled EXPIRE_PER_TURN at a
// time, with I/O in between: Node runs every due timer in one go, and each expiry hands a
// connection on (an HTTP/1 server answering 408, an opaque dial), so 500 at once held
// other clients' requests for tens of milliseconds.
const EXPIRE_PER_TURN = 16;
const due: (Peek | undefined)[] = [];
/** Each queued expiry's arming: one re-armed meanwhile (its first bytes came) is stale. */
const dueArming: number[] = [];
let dueNext = 0;
let draining = false;

function expire(peek: Peek): void {
  due.push(peek);
  dueArming.push(peek.arming);
  if (!draining) {
    draining = true;
    setImmediate(drainDue);
  }
}

function drainDue(): void {
  const end = Math.min(due.length, dueNext + EXPIRE_PER_TURN);
  try {
    while (dueNext < end) {
      const p = due[dueNext]!;
      due[dueNext] = undefined;
      if (dueArming[dueNext++] === p.arming) p.expire();
    }
  } finally {
    // Even after a throw: the expiries behind it must not wait forever.
    if (dueNext < due.length) setImmediate(drainDue);
    else {
      due.length = 0;
      dueArming.length = 0;
      dueNext = 0;
      draining = false;
    }
  }
}

function settle(socket: Socket, onError: () => void, resolve: (d: Detected) => void, result: Detected): void {
  socket.pause();
  socket.removeListener('error', onError); // kept until now: an 'error' with no listener throws
  resolve(result);
}
