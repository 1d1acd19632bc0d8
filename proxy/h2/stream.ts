// One HTTP/2 stream, either role: the contract's ServerStream (a request we
// received) and ClientStream (a request we sent) are the same state machine
// seen from two sides. Receive side: DATA goes straight to the listener; a
// listener that says "no more" makes the stream queue (a copy, bounded by the
// stream window, since nothing is credited until it is consumed). Send side:
// body chunks are framed at once while both windows allow, else queued.
import { Buffer } from 'node:buffer';
import { ProxyError } from '../errors.js';
import type { BodyListener, ClientStream, HeaderList, RequestHead, RequestListener, ResponseHead, ServerStream, StreamReset } from '../message/types.js';
import type { H2Connection } from './connection.js';
import { TOKEN } from '../h1/chars.js';
import { lowerName } from '../headers.js';
import { forbiddenInValue } from './hpack/decoder.js';
import { isLent } from '../transport/chunks.js';

/** What both roles' listeners have; ResponseListener adds onContinue/onResponse, used by client.ts. */
export interface StreamListener extends BodyListener {
  onWritable(): void;
}

/** A chunk queued beyond the windows: write() says false past this. */
const HIGH_WATER = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export class H2Stream implements ServerStream, ClientStream {
  /** 0 while a client-role stream waits for a concurrency slot. */
  id = 0;
  head!: RequestHead;
  bodyless = false;
  expectsContinue = false;
  l: StreamListener | null = null;
  /** Final head sent (server role) or received (client role). */
  headDone = false;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  /** The body listener has had onEnd (or the stream was reset). */
  endDelivered = false;
  /** Request was HEAD (client role): a response's content-length describes no body. */
  noBody = false;
  /** Our response is complete and the rest of the request body is read and dropped (§8.1). */
  discard = false;
  /** The peer sent RST_STREAM(NO_ERROR) after its complete response (client role): we send nothing more. */
  peerReset = false;
  /** Waiting for a reset our budget does not allow yet: its window stays shut (see starve()). */
  starved = false;
  /**
   * A CONNECT on a tunnel session (proxy/tunnel.ts): each direction is a TCP half of its own
   * (RFC 9113 §8.5), so (server role) a response that ends first is a FIN, not an early
   * answer: the request body is still read, and its end still delivered. And what the tunnel
   * writes on it is handed over (its socket's reads, fresh per read, never changed after):
   * framed and queued as it is, not copied.
   */
  duplex = false;

  // Receive side.
  recvWindow: number;
  /** Consumed bytes not yet announced in a WINDOW_UPDATE. */
  credit = 0;
  paused = false;
  /** Bytes delivered or queued while paused, not yet consumed. */
  held = 0;
  /** Of those, bytes the connection window has not been credited for. */
  connOwed = 0;
  inQ: Buffer[] | null = null;
  trailers: HeaderList | undefined;
  expectLen = -1;
  recvLen = 0;

  // Send side.
  sendWindow: number;
  outQ: Buffer[] | null = null;
  outBytes = 0;
  endQueued = false;
  outTrailers: HeaderList | undefined;
  wantWritable = false;

  constructor(readonly conn: H2Connection) {
    this.recvWindow = conn.streamWindow;
    this.sendWindow = conn.peerInitialWindow;
  }

  // ---- the contract (ServerStream and ClientStream) ----

  listen(l: RequestListener): void {
    this.l = l;
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    const n = this.held - this.#queued();
    this.#consumeHeld(n);
    this.drainIn();
  }

  sendContinue(): void {
    if (!this.expectsContinue || this.headDone || this.closed) return;
    this.expectsContinue = false;
    this.conn.sendHeaders(this, [':status', '100'], false);
  }

  respond(head: ResponseHead, endStream: boolean): void {
    if (this.headDone || this.closed || this.localEnded) return;
    this.headDone = true;
    this.expectsContinue = false;
    const list = [':status', String(head.status)];
    appendFields(list, head.headers, undefined);
    this.conn.sendHeaders(this, list, endStream);
    if (endStream) this.#localEnd();
  }

  write(chunk: Buffer): boolean {
    if (this.localEnded || this.closed || this.endQueued) return true; // a reset stream swallows late writes
    let off = 0;
    if (this.outQ === null && this.id !== 0 && !this.conn.socketBlocked) {
      off = this.sendNow(chunk, 0, this.duplex);
      if (off === chunk.length) return true;
    }
    // Beyond the windows: a copy, since the chunk may be a view into a reused read buffer (not a CONNECT's).
    const rest = off === 0 ? chunk : chunk.subarray(off);
    (this.outQ ??= []).push(this.duplex ? rest : Buffer.from(rest));
    this.outBytes += chunk.length - off;
    this.conn.blocked(this);
    if (this.outBytes < HIGH_WATER) return true;
    this.wantWritable = true;
    return false;
  }

  end(trailers?: HeaderList): void {
    if (this.localEnded || this.closed || this.endQueued) return;
    if (this.outQ !== null || this.id === 0) {
      this.endQueued = true;
      this.outTrailers = trailers;
      return;
    }
    this.#sendEnd(trailers);
  }

  reset(r: StreamReset): void {
    if (this.closed) return;
    // Already reset by the peer: no RST_STREAM in answer to one (§5.4.2).
    if (this.peerReset) return this.conn.streamDone(this);
    // Client role, a cancellation relayed for one of many app clients: resets
    // cost the peer, which rate-limits them (rapid-reset defences, CVE-2023-44487)
    // and may close the connection every client shares. Within our budget a
    // RST_STREAM goes; beyond it, a request already complete is left to run
    // out and its response discarded, so one client's reset flood stays on its
    // own connection. An incomplete request must be reset: ending it would
    // hand the server a truncated body as complete.
    if (this.conn.role === 'client' && this.id !== 0 && this.localEnded && !this.conn.mayReset()) {
      this.l = null;
      this.starve();
      this.conn.deferReset(this, r.h2Code);
      return;
    }
    this.conn.resetStream(this, r.h2Code);
  }

  // ---- receive side, driven by the connection ----

  /** DATA already charged to both windows. `flow` counts padding too. */
  onData(data: Buffer, flow: number, end: boolean): void {
    if (this.starved) {
      this.conn.creditConn(flow);
      if (end && !this.closed) this.conn.streamDone(this);
      return;
    }
    if (flow > data.length) this.consumed(flow - data.length); // padding is consumed at once
    const n = data.length;
    if (this.discard) this.consumed(n);
    else if (n > 0) {
      if (this.l === null || this.paused || this.inQ !== null) {
        // A copy: a view would keep its whole read (up to 64 KiB) for however few bytes it holds.
        // Not a recycled chunk's payload: that is its frame, and goes back once its reader spent it.
        (this.inQ ??= []).push(isLent(data) ? data : Buffer.from(data));
        this.#hold(n);
      } else if (this.l.onData(data)) {
        this.consumed(n);
      } else {
        this.paused = true;
        this.#hold(n);
      }
    }
    if (end && !this.closed) this.remoteEnd(undefined);
  }

  /** END_STREAM received, with trailers when a trailing HEADERS carried it. */
  remoteEnd(trailers: HeaderList | undefined): void {
    this.remoteEnded = true;
    this.trailers = trailers;
    // Both sides ended: a starved stream needs no reset any more.
    if (this.discard || this.starved) this.conn.streamDone(this);
    else this.drainIn();
  }

  /** Delivers queued body while the listener takes it, then the end. */
  drainIn(): void {
    const l = this.l;
    if (l === null) return;
    const q = this.inQ;
    if (q !== null) {
      while (q.length > 0 && !this.paused && !this.closed) {
        const c = q.shift()!;
        if (q.length === 0) this.inQ = null;
        if (l.onData(c)) this.#consumeHeld(c.length);
        else this.paused = true; // this chunk stays held until resume()
      }
      if (q.length > 0 || this.closed) return;
      this.inQ = null;
    }
    if (!this.remoteEnded || this.endDelivered || this.closed) return;
    this.endDelivered = true;
    l.onEnd(this.trailers);
    if (this.localEnded) this.conn.streamDone(this);
  }

  /** `n` received bytes were consumed: credit both windows. */
  consumed(n: number): void {
    this.conn.creditConn(n);
    this.#creditStream(n);
  }

  #creditStream(n: number): void {
    if (this.remoteEnded || this.closed) return; // no more DATA can come: nothing to announce
    this.credit += n;
    if (this.credit >= this.conn.streamUpdateAt) {
      this.recvWindow += this.credit;
      this.conn.streamWindowUpdate(this, this.credit);
      this.credit = 0;
    }
  }

  #queued(): number {
    let n = 0;
    if (this.inQ !== null) for (const c of this.inQ) n += c.length;
    return n;
  }

  /** Received but not consumed: the connection window is freed only within its budget. */
  #hold(n: number): void {
    this.held += n;
    this.connOwed += this.conn.hold(n);
  }

  #consumeHeld(n: number): void {
    if (n <= 0) return;
    this.held -= n;
    const owed = Math.min(n, this.connOwed);
    this.connOwed -= owed;
    this.conn.unhold(n, owed);
    this.#creditStream(n);
  }

  /**
   * Nobody reads this stream any more and its reset must wait: what is held
   * is dropped and the connection window credited, but the stream's own window
   * is never reopened, so the peer stops sending on it.
   */
  starve(): void {
    this.starved = true;
    this.paused = false;
    this.releaseHeld();
  }

  /** From now on the request body is read and dropped: what is held is consumed. */
  discardRest(): void {
    const n = this.held;
    this.discard = true;
    this.paused = false;
    this.releaseHeld();
    this.#creditStream(n);
  }

  /** Forget everything held (the stream closed); the connection gets its window back. */
  releaseHeld(): void {
    if (this.held > 0) this.conn.unhold(this.held, this.connOwed);
    this.held = this.connOwed = 0;
    this.inQ = null;
    this.outQ = null;
    this.outBytes = 0;
  }

  /**
   * The server reset the stream with NO_ERROR after its complete response:
   * nothing more is sent on it (late writes are swallowed), and it closes once
   * the queued response has been delivered.
   */
  stopSending(): void {
    this.peerReset = true;
    this.localEnded = true;
    this.endQueued = false;
    this.outQ = null;
    this.outBytes = 0;
    if (this.endDelivered || this.l === null) this.conn.streamDone(this);
  }

  /** The peer or the connection cut the stream: tell the listener once. */
  cut(reset: StreamReset, notify: boolean): void {
    if (this.closed) return;
    this.conn.streamDone(this);
    if (notify && this.l !== null) this.l.onReset(reset);
  }

  // ---- send side ----

  /** Frames as much of chunk[from..] as the windows allow; returns bytes framed. `handedOver`: see FrameWriter.data. */
  sendNow(chunk: Buffer, from: number, handedOver: boolean): number {
    const c = this.conn;
    let off = from;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.sendWindow, c.connSendWindow, c.peerMaxFrame);
      if (n <= 0) break;
      c.w.data(this.id, chunk, off, n, false, handedOver);
      this.sendWindow -= n;
      c.connSendWindow -= n;
      off += n;
    }
    if (off > from) c.schedule();
    return off - from;
  }

  /** Sends queued body as the windows allow; true when nothing is left waiting. */
  pump(): boolean {
    const q = this.outQ;
    if (q !== null && this.id !== 0) {
      while (q.length > 0) {
        const c = q[0]!;
        const n = this.sendNow(c, 0, true); // our own copies, or a CONNECT's handed-over chunks
        this.outBytes -= n;
        if (n < c.length) {
          q[0] = c.subarray(n);
          break;
        }
        q.shift();
      }
      if (q.length === 0) this.outQ = null;
    }
    if (this.outQ === null && this.endQueued && this.id !== 0 && !this.closed) {
      this.endQueued = false;
      this.#sendEnd(this.outTrailers);
    }
    if (this.wantWritable && this.outBytes < HIGH_WATER && !this.closed) {
      this.wantWritable = false;
      this.l?.onWritable();
    }
    return this.outQ === null || this.closed;
  }

  #sendEnd(trailers: HeaderList | undefined): void {
    if (trailers !== undefined && trailers.length > 0) {
      const list: string[] = [];
      appendFields(list, trailers, undefined);
      this.conn.sendHeaders(this, list, true);
    } else {
      this.conn.w.data(this.id, EMPTY, 0, 0, true);
      this.conn.schedule();
    }
    this.#localEnd();
  }

  #localEnd(): void {
    this.localEnded = true;
    if (this.remoteEnded) {
      if (this.endDelivered || this.l === null) this.conn.streamDone(this);
      else if (this.conn.role === 'server' && !this.duplex) {
        // The response is complete while the rest of the request body waits,
        // paused, for a listener that is done with the exchange and will never
        // resume it: dropped with the stream, which would otherwise hold its
        // concurrency slot and its share of the connection window for good.
        this.l = null;
        this.conn.streamDone(this);
      }
    } else if (!this.duplex) {
      this.conn.endedEarly(this);
    }
  }
}

/** A reset as the contract carries it. */
export function streamReset(h2Code: number, code: ProxyError['code'], message: string): StreamReset {
  return { h2Code, error: new ProxyError(code, message) };
}

// Connection-specific fields have no meaning in HTTP/2 and make a message
// malformed (RFC 9113 §8.2.2); an HTTP/1 head may carry them.
// Compared by length first: no hashing of each field name (a set lookup hashes every new string).
function connectionSpecific(lower: string): boolean {
  switch (lower.length) {
    case 7:
      return lower === 'upgrade';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 16:
      return lower === 'proxy-connection';
    case 17:
      return lower === 'transfer-encoding';
    default:
      return false;
  }
}

/**
 * Appends a head's fields for encoding: names lower-cased (an HTTP/1 head
 * keeps its case), connection-specific ones dropped, te only as "trailers",
 * and `skip` (host, when it became :authority) left out.
 */
export function appendFields(out: string[], headers: HeaderList, skip: string | undefined): void {
  for (let i = 0; i < headers.length; i += 2) {
    let name = headers[i]!;
    name = lowerName(name);
    if (connectionSpecific(name) || name === skip) continue;
    const value = headers[i + 1]!;
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers') continue;
    out.push(name, value);
  }
}

/** tchar without upper case (RFC 9110 §5.6.2; h2 names are lower case, RFC 9113 §8.2.1). */
const NAME_CHAR = TOKEN.map((ok, c) => (c >= 0x41 && c <= 0x5a ? 0 : ok));

function badName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 255 || NAME_CHAR[c] !== 1) return true;
  }
  return false;
}

/**
 * Checks a received regular field (RFC 9113 §8.2): a lower-case token name,
 * no NUL/CR/LF in the value (it may be written on as HTTP/1), nothing
 * connection-specific. Returns a reason, or undefined when fine. `valueChecked`: the HPACK
 * decoder already found no NUL/CR/LF in any value of the block (HpackDecoder.valuesOk).
 */
export function badField(name: string, value: string, valueChecked = false): string | undefined {
  if (name.length === 0 || badName(name)) return `invalid field name "${name}"`;
  if (!valueChecked && forbiddenInValue(value)) return `invalid value for ${name}`;
  if (connectionSpecific(name)) return `connection-specific field ${name}`;
  if (name === 'te' && value !== 'trailers') return 'te other than trailers';
  return undefined;
}

/** Trailers as received: no pseudo-headers, valid fields. */
export function checkTrailers(fields: string[], valuesChecked = false): string | undefined {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i]!.charCodeAt(0) === 58) return 'pseudo-header in trailers';
    const bad = badField(fields[i]!, fields[i + 1]!, valuesChecked);
    if (bad !== undefined) return bad;
  }
  return undefined;
}
