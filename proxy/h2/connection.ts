// The connection core both roles share: preface and SETTINGS, the frame read
// loop, connection-level flow control, PING, GOAWAY, abuse budgets and write
// batching. Roles (server.ts, client.ts) add what a HEADERS frame means.
//
// Every frame of a loop turn goes to one output slab that leaves in one
// socket write scheduled with setImmediate: process.nextTick fires after each
// socket callback and batched nothing across sockets (measured 13-17% slower).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { ProxyErrorCode } from '../errors.js';
import { noteRead } from '../gc.js';
import { takeReadViews } from '../transport/reads.js';
import { spentAll } from '../transport/chunks.js';
import { sealedOf, type SealedChannel } from '../transport/sealed.js';
import {
  H2_COMPRESSION_ERROR, H2_ENHANCE_YOUR_CALM, H2_FLOW_CONTROL_ERROR, H2_FRAME_SIZE_ERROR, H2_NO_ERROR, H2_PROTOCOL_ERROR, H2_STREAM_CLOSED,
  type StreamReset,
} from '../message/types.js';
import { encodedBlock, HpackDecoder, HpackEncoder, HpackError } from './hpack/index.js';
import * as F from './frames.js';
import { Budget, PROFILES, type H2Options, type Limits } from './limits.js';
import { streamReset, type H2Stream } from './stream.js';
import { StreamTable } from './stream-table.js';

export type { H2Options } from './limits.js';

/** How long a connection failed with GOAWAY is kept reading (discarding) so the GOAWAY is delivered. */
const GOAWAY_LINGER_MS = 1000;

/** The opaque data of our keepalive PINGs (any 8 bytes; the peer echoes them). */
const KEEPALIVE_PING = Buffer.from('meshping', 'latin1');

export abstract class H2Connection implements F.FrameSink {
  readonly w = new F.FrameWriter();
  /** Open streams by id (not a Map: stream-table.ts says why). */
  readonly streams = new StreamTable<H2Stream>();
  readonly #reader = new F.FrameReader(this);
  readonly #limits: Limits;
  readonly #resets: Budget;
  readonly #control: Budget;
  /** WINDOW_UPDATEs for streams already closed: every eighth is charged to #control. */
  #lateUpdates = 0;
  readonly #ourResets: Budget;
  protected readonly decoder: HpackDecoder;
  protected readonly encoder = new HpackEncoder();

  // Ours.
  readonly streamWindow: number;
  readonly streamUpdateAt: number;
  readonly #connWindow: number;
  #connCredit = 0;
  #connRecv: number;
  #held = 0;
  // The peer's.
  peerInitialWindow = F.DEFAULT_WINDOW;
  peerMaxFrame = F.DEFAULT_MAX_FRAME;
  /** Assumed until the peer's SETTINGS say otherwise (RFC 9113 leaves it unlimited; peers use ~100). */
  peerMaxStreams = 100;
  connSendWindow = F.DEFAULT_WINDOW;

  socketBlocked = false;
  readonly #blocked = new Set<H2Stream>();
  #flushQueued = false;
  #preface: number; // bytes of the client preface still expected (server role)
  #settingsSeen = false;
  // A header block arriving in CONTINUATION frames.
  #contId = 0;
  #contFlags = 0;
  #contParts: Buffer[] = [];
  #contSize = 0;

  /** Highest stream id the peer opened (server) or we accepted a frame for. */
  lastPeerId = 0;
  /** We sent GOAWAY: no new streams; close once the last one ends. */
  goingAway = false;
  /** The peer sent GOAWAY; its last-stream-id. */
  peerGoaway = -1;
  dead = false;
  /** The channel of a sealed mTLS session (its records are ours): every read and write goes through it. */
  readonly #sealed: SealedChannel | undefined;

  constructor(
    readonly socket: Socket,
    readonly role: 'server' | 'client',
    readonly options: H2Options,
  ) {
    this.#sealed = sealedOf(socket);
    const l = (this.#limits = { ...PROFILES[options.peer ?? 'app'], ...options.limits });
    this.streamWindow = Math.max(F.DEFAULT_WINDOW, Math.min(F.MAX_WINDOW, options.streamWindow ?? l.streamWindow));
    this.#connWindow = Math.max(F.DEFAULT_WINDOW, Math.min(F.MAX_WINDOW, options.connectionWindow ?? l.connectionWindow));
    this.streamUpdateAt = this.streamWindow >>> 1;
    this.#connRecv = this.#connWindow;
    const now = options.now ?? performance.now.bind(performance);
    this.#resets = new Budget(l.resetBurst, l.resetRate, now);
    this.#control = new Budget(l.controlBurst, l.controlRate, now);
    this.#ourResets = new Budget(l.ourResetBurst, l.ourResetRate, now);
    this.decoder = new HpackDecoder({ maxHeaderListSize: this.maxHeaderListSize });
    this.#preface = role === 'server' ? F.PREFACE.length : 0;
    if (role === 'client') this.w.bytes(F.PREFACE);
    const settings = [F.SETTINGS_MAX_CONCURRENT_STREAMS, this.maxStreams, F.SETTINGS_INITIAL_WINDOW_SIZE, this.streamWindow, F.SETTINGS_MAX_HEADER_LIST_SIZE, this.maxHeaderListSize];
    const maxFrame = Math.max(F.DEFAULT_MAX_FRAME, Math.min(F.MAX_FRAME_LIMIT, l.maxFrameSize));
    if (maxFrame !== F.DEFAULT_MAX_FRAME) {
      // Larger frames are taken at once: a peer may send them as soon as it has read our SETTINGS.
      this.#reader.maxFrameSize = maxFrame;
      settings.push(F.SETTINGS_MAX_FRAME_SIZE, maxFrame);
    }
    if (role === 'client') settings.push(F.SETTINGS_ENABLE_PUSH, 0);
    // A tunnel session's streams are joined to sockets that spend what they are given (proxy/tunnel.ts).
    this.#reader.recycle = options.peer === 'tunnel';
    this.w.settings(settings);
    if (this.#connWindow > F.DEFAULT_WINDOW) this.w.windowUpdate(0, this.#connWindow - F.DEFAULT_WINDOW);
    this.schedule();
    socket.on('end', this.#onLost);
    socket.on('close', this.#onLost);
    socket.on('error', this.#onLost);
    socket.on('drain', this.#onDrain);
    if (options.idleTimeoutMs !== undefined && options.idleTimeoutMs > 0) {
      socket.setTimeout(options.idleTimeoutMs);
      socket.on('timeout', this.#onIdle);
    } else if (options.keepaliveMs !== undefined && options.keepaliveMs > 0) {
      socket.setTimeout(options.keepaliveMs);
      socket.on('timeout', this.#onQuiet);
    }
  }

  /**
   * Starts reading: the last step of each role's constructor, since bytes the
   * socket already holds are handled at once (a request's HEADERS reach the
   * role's handler, which must be set by then).
   */
  protected listen(): void {
    const initial = this.options.initial;
    if (initial !== undefined && initial.length > 0) this.#onBytes(initial);
    // Reads come as views (the reader copies DATA payloads, whole); from the fallback's 'data'
    // events too, which then costs a second copy of each payload. On TLS the rest of a long
    // DATA frame is read into place: OpenSSL decrypts into it, records come whole and no read
    // is shorter for it. Not on plain TCP: there a read cut at the frame's end is one more
    // read(2) (a few µs) to save a copy of a few KiB (under 1 µs).
    // A sealed session's channel opens its records and hands over the plaintext as views; the
    // rest of a long DATA frame takes a record's plaintext in place, as on TLS.
    if (this.#sealed !== undefined) return this.#sealed.listen(this.#onBytes, this.#placeRead);
    const place = (this.socket as { encrypted?: boolean }).encrypted === true ? this.#placeRead : null;
    if (!takeReadViews(this.socket, this.#onBytes, place)) this.socket.on('data', this.#onBytes);
  }

  /** The peer has spoken HTTP/2 (its SETTINGS came): a connection lost before that was never an HTTP/2 peer. */
  get peerSpoke(): boolean {
    return this.#settingsSeen;
  }

  get maxStreams(): number {
    return this.options.maxConcurrentStreams ?? this.#limits.maxConcurrentStreams;
  }

  get maxHeaderListSize(): number {
    return this.options.maxHeaderListSize ?? this.#limits.maxHeaderListSize;
  }

  /** A HEADERS block decoded (`tooLarge`: beyond our header list size, the table still in sync). */
  /** `valuesOk`: the decoder found no NUL, CR or LF in any value (the roles need not scan them again). */
  protected abstract onHead(id: number, endStream: boolean, fields: string[], tooLarge: boolean, valuesOk: boolean): void;
  /** The peer's GOAWAY, or SETTINGS that may change how many streams we may open. */
  protected abstract onPeerLimits(): void;
  /** The reset every open stream gets when the connection goes. */
  /** `lost`: the whole connection went, not one stream. */
  protected abstract lostReset(code: number, why: string, abuse: boolean, lost?: boolean): StreamReset;
  /** A stream left the map. */
  protected abstract onStreamDone(s: H2Stream): void;
  /** Nothing pending of this role's own (client: queued requests). */
  protected abstract idle(): boolean;

  // ---- output ----

  schedule(): void {
    if (this.#flushQueued || this.dead) return;
    this.#flushQueued = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    const out = this.w.takeParts();
    if (out === null || this.socket.destroyed) {
      // nothing to write, or nobody to write to
    } else if (this.#sealed !== undefined) {
      // Sealed: every piece into one run of records, one socket write (no concatenation first).
      const now = this.#sealed.sealsAtOnce;
      if (!this.#sealed.write(out)) this.socketBlocked = true;
      // Sealing copied the pieces: a tunnel's recycled read chunks go back (those it holds still are queued elsewhere).
      if (now && !Buffer.isBuffer(out)) spentAll(out);
    } else if (Buffer.isBuffer(out)) {
      if (!this.socket.write(out)) this.socketBlocked = true;
    } else {
      // Headers in the slab, long payloads as they came: one corked write (a single writev).
      const socket = this.socket;
      socket.cork();
      let ok = true;
      for (let i = 0; i < out.length; i++) ok = socket.write(out[i]!);
      socket.uncork();
      if (!ok) this.socketBlocked = true;
    }
    if (this.streams.size === 0) this.w.release();
  };

  readonly #onDrain = (): void => {
    this.socketBlocked = false;
    this.pumpAll();
  };

  sendHeaders(s: H2Stream, fields: string[], endStream: boolean): void {
    const n = this.encoder.encodeBlock(fields);
    this.w.headers(s.id, encodedBlock(), endStream, this.peerMaxFrame, n);
    this.schedule();
  }

  /** A stream has body waiting for window. */
  blocked(s: H2Stream): void {
    this.#blocked.add(s);
  }

  pumpAll(): void {
    if (this.socketBlocked) return;
    for (const s of this.#blocked) {
      if (this.connSendWindow <= 0) break;
      if (s.pump()) this.#blocked.delete(s);
    }
  }

  // ---- receive-side flow control ----

  creditConn(n: number): void {
    this.#connCredit += n;
    if (this.#connCredit >= this.#connWindow >>> 1 && !this.dead) {
      this.#connRecv += this.#connCredit;
      this.w.windowUpdate(0, this.#connCredit);
      this.#connCredit = 0;
      this.schedule();
    }
  }

  streamWindowUpdate(s: H2Stream, n: number): void {
    this.w.windowUpdate(s.id, n);
    this.schedule();
  }

  /**
   * `n` bytes received and held unconsumed (a paused stream). The connection
   * window is credited at once while the total held fits the budget, so one
   * stalled stream costs at most its own window; beyond it the bytes stay owed
   * and the connection window bounds memory. Returns the bytes owed.
   */
  hold(n: number): number {
    this.#held += n;
    if (this.#held <= this.#limits.holdBudget) {
      this.creditConn(n);
      return 0;
    }
    return n;
  }

  unhold(n: number, owed: number): void {
    this.#held -= n;
    if (owed > 0) this.creditConn(owed);
  }

  // ---- streams ----

  /** One RST_STREAM of our own may go now (the budget peers' rapid-reset limits leave us). */
  mayReset(): boolean {
    return this.#ourResets.take();
  }

  // Streams whose reset waits for our budget (client role, a cancellation flood
  // relayed from app clients). Meanwhile they are starved, not drained: their
  // windows are never reopened, so each costs at most what was already in
  // flight, and the peer does not spend the shared connection sending bodies
  // nobody will read (a 10 MB response left to "run out" starved other
  // streams on it, and nghttp2 servers then abort those early: seen in CI).
  readonly #deferredResets: Array<{ s: H2Stream; code: number }> = [];
  #deferredTimer: NodeJS.Timeout | undefined;

  deferReset(s: H2Stream, code: number): void {
    this.#deferredResets.push({ s, code });
    this.#armDeferred();
  }

  #armDeferred(): void {
    if (this.#deferredTimer !== undefined || this.#deferredResets.length === 0 || this.dead) return;
    this.#deferredTimer = setTimeout(this.#flushDeferred, Math.max(1, Math.ceil(1000 / this.#limits.ourResetRate)));
    this.#deferredTimer.unref();
  }

  readonly #flushDeferred = (): void => {
    this.#deferredTimer = undefined;
    const q = this.#deferredResets;
    while (q.length > 0 && !this.dead) {
      if (q[0]!.s.closed) {
        q.shift();
        continue;
      }
      if (!this.#ourResets.take()) break;
      const { s, code } = q.shift()!;
      this.resetStream(s, code);
    }
    this.#armDeferred();
  };

  resetStream(s: H2Stream, code: number): void {
    if (s.id !== 0) {
      this.w.rst(s.id, code);
      this.schedule();
    }
    this.streamDone(s);
  }

  streamDone(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    s.releaseHeld();
    this.#blocked.delete(s);
    if (s.id !== 0) this.streams.delete(s.id);
    // The last stream gone: an idle connection keeps no output slab (16 KiB). A queued flush
    // lets it go itself once its bytes are taken.
    if (this.streams.size === 0 && !this.#flushQueued) this.w.release();
    this.onStreamDone(s);
    if (this.streams.size === 0 && this.idle() && (this.goingAway || this.peerGoaway >= 0)) this.#finish();
  }

  /**
   * We ended our side while the peer's is still open. RFC 9113 §8.1: a server
   * may ask the client to stop sending with RST_STREAM(NO_ERROR) after a
   * complete response; we do so within a budget (peers rate-limit resets,
   * nghttp2 answers a flood with GOAWAY), else read and discard the rest.
   */
  endedEarly(s: H2Stream): void {
    if (this.role !== 'server') return;
    // The rest of the request body is not read (RFC 9113 §8.1: RST_STREAM NO_ERROR).
    // The listener is not told of a reset: the exchange is complete, not cut (an
    // upload refused with 413 is a response like any other), and the one who sent
    // this response, the forwarder, stops the request upstream itself.
    s.l = null;
    s.discardRest();
    if (this.#ourResets.take()) this.resetStream(s, H2_NO_ERROR);
  }

  /** A stream error: RST_STREAM to the peer, onReset to the listener. */
  streamError(s: H2Stream, code: number, why: string): void {
    if (s.closed) return;
    this.resetStream(s, code);
    if (s.l !== null) s.l.onReset(streamReset(code, this.role === 'server' ? 'MESH_CLIENT_PROTOCOL' : 'MESH_UPSTREAM_PROTOCOL', why));
  }

  // ---- input ----

  readonly #placeRead = (): Buffer | null => (this.dead ? null : this.#reader.readInto());

  readonly #onBytes = (chunk: Buffer): void => {
    // A tunnel session's long DATA frames are read into recycled chunks: no fresh buffers to collect.
    if (!this.#reader.recycle) noteRead(chunk.length);
    if (this.dead) return;
    this.#pingOut = false; // anything read shows the peer is there
    try {
      if (this.#preface > 0) {
        const n = Math.min(this.#preface, chunk.length);
        const at = F.PREFACE.length - this.#preface;
        if (F.PREFACE.compare(chunk, 0, n, at, at + n) !== 0) return this.fail(H2_PROTOCOL_ERROR, 'not an HTTP/2 client preface');
        this.#preface -= n;
        if (n === chunk.length) return;
        chunk = chunk.subarray(n);
      }
      const e = this.#reader.push(chunk);
      if (e !== 0) this.fail(e, 'frame too large');
    } catch (err) {
      // A bug of ours must cost one connection, not the process.
      this.fail(0x2, `internal error: ${(err as Error).message}`);
    }
  };

  onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#contId !== 0 && (type !== F.CONTINUATION || id !== this.#contId)) return this.fail(H2_PROTOCOL_ERROR, 'header block interrupted');
    if (!this.#settingsSeen) {
      if (type !== F.SETTINGS || (flags & F.FLAG_ACK) !== 0) return this.fail(H2_PROTOCOL_ERROR, 'first frame is not SETTINGS');
      this.#settingsSeen = true;
    }
    const e = F.frameError(type, flags, id, payload.length);
    if (e !== 0) return this.fail(e, `malformed frame of type ${type}`);
    switch (type) {
      case F.DATA:
        return this.#onData(flags, id, payload);
      case F.HEADERS: {
        const block = F.unpad(type, flags, payload);
        if (block === null) return this.fail(H2_PROTOCOL_ERROR, 'bad padding');
        if ((flags & F.FLAG_END_HEADERS) !== 0) return this.#headerBlock(id, flags, block);
        this.#contId = id;
        this.#contFlags = flags;
        this.#contParts = [Buffer.from(block)];
        this.#contSize = block.length;
        return;
      }
      case F.CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case F.PRIORITY:
        if (!this.charge(this.#control, 'PRIORITY flood')) return;
        if (payload.length !== 5) {
          const s = this.streams.get(id);
          if (s !== undefined) this.streamError(s, H2_FRAME_SIZE_ERROR, 'PRIORITY of wrong size');
        }
        return;
      case F.RST_STREAM:
        return this.#onRst(id, payload.readUInt32BE(0));
      case F.SETTINGS:
        if ((flags & F.FLAG_ACK) !== 0) return;
        if (!this.charge(this.#control, 'SETTINGS flood')) return;
        return this.#onSettings(payload);
      case F.PING:
        if ((flags & F.FLAG_ACK) !== 0) return;
        if (!this.charge(this.#control, 'PING flood')) return;
        this.w.ping(true, payload);
        return this.schedule();
      case F.GOAWAY:
        this.peerGoaway = payload.readUInt32BE(0) & 0x7fffffff;
        this.onPeerLimits();
        if (this.streams.size === 0 && this.idle()) this.#finish();
        return;
      case F.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload.readUInt32BE(0) & 0x7fffffff);
      default:
        return; // unknown frame types are ignored (§5.5)
    }
  }

  /** Is `id` a stream that was never opened (a frame for it is a connection error)? */
  protected abstract isIdle(id: number): boolean;

  #onData(flags: number, id: number, payload: Buffer): void {
    const flow = payload.length;
    this.#connRecv -= flow;
    if (this.#connRecv < 0) return this.fail(H2_FLOW_CONTROL_ERROR, 'connection window exceeded');
    const s = this.streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (this.isIdle(id)) return this.fail(H2_PROTOCOL_ERROR, 'DATA on an idle stream');
      this.creditConn(flow); // a stream we reset or finished: its bytes still count (§6.9)
      if (s !== undefined) this.streamError(s, H2_STREAM_CLOSED, 'DATA after END_STREAM');
      return;
    }
    const data = F.unpad(F.DATA, flags, payload);
    if (data === null) return this.fail(H2_PROTOCOL_ERROR, 'bad padding');
    const end = (flags & F.FLAG_END_STREAM) !== 0;
    if (flow === 0 && !end && !this.charge(this.#control, 'empty DATA flood')) return;
    s.recvWindow -= flow;
    if (s.recvWindow < 0) {
      this.creditConn(flow);
      return this.streamError(s, H2_FLOW_CONTROL_ERROR, 'stream window exceeded');
    }
    if (!s.headDone && this.role === 'client') {
      this.creditConn(flow);
      return this.streamError(s, H2_PROTOCOL_ERROR, 'DATA before the response head');
    }
    s.recvLen += data.length;
    if (s.expectLen >= 0 && (s.recvLen > s.expectLen || (end && s.recvLen !== s.expectLen))) {
      this.creditConn(flow);
      return this.streamError(s, H2_PROTOCOL_ERROR, 'body length differs from content-length');
    }
    s.onData(data, flow, end);
  }

  #onContinuation(flags: number, id: number, payload: Buffer): void {
    if (this.#contId === 0 || id !== this.#contId) return this.fail(H2_PROTOCOL_ERROR, 'unexpected CONTINUATION');
    if (payload.length === 0 && (flags & F.FLAG_END_HEADERS) === 0 && !this.charge(this.#control, 'empty CONTINUATION flood')) return;
    this.#contSize += payload.length;
    // The compressed block is held whole before decoding: cap it, or one
    // endless header block is unbounded memory (the CONTINUATION flood, 2024).
    if (this.#contSize > this.#limits.maxHeaderBlock) return this.abuse('MESH_HEADERS_TOO_LARGE', 'header block beyond its cap');
    this.#contParts.push(Buffer.from(payload));
    if ((flags & F.FLAG_END_HEADERS) === 0) return;
    const block = Buffer.concat(this.#contParts, this.#contSize);
    this.#contId = 0;
    this.#contParts = [];
    this.#headerBlock(id, this.#contFlags, block);
  }

  #headerBlock(id: number, flags: number, block: Buffer): void {
    const fields: string[] = [];
    let tooLarge = false;
    try {
      this.decoder.decode(block, fields);
    } catch (err) {
      if (!(err instanceof HpackError) || err.code !== 'MESH_HEADERS_TOO_LARGE') return this.fail(H2_COMPRESSION_ERROR, `HPACK: ${(err as Error).message}`);
      tooLarge = true;
    }
    this.onHead(id, (flags & F.FLAG_END_STREAM) !== 0, fields, tooLarge, !tooLarge && this.decoder.valuesOk);
  }

  #onRst(id: number, code: number): void {
    const s = this.streams.get(id);
    if (s === undefined) {
      if (this.isIdle(id)) return this.fail(H2_PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    // Rapid reset (CVE-2023-44487): a stream opened and cancelled before we
    // answered cost us a request upstream for the price of two frames.
    if (this.role === 'server' && !s.localEnded && !this.charge(this.#resets, 'rapid reset')) return;
    // A server's RST_STREAM(NO_ERROR) after a complete response only asks us
    // to stop sending the request body (§8.1): the exchange succeeded, and a
    // client must not discard the response, even the part still queued for a
    // paused reader.
    if (code === H2_NO_ERROR && this.role === 'client' && s.remoteEnded) return s.stopSending();
    s.cut(this.lostReset(code, `peer reset the stream (code ${code})`, false), true);
  }

  #onSettings(p: Buffer): void {
    for (let i = 0; i < p.length; i += 6) {
      const key = p.readUInt16BE(i);
      const v = p.readUInt32BE(i + 2);
      switch (key) {
        case F.SETTINGS_HEADER_TABLE_SIZE:
          this.encoder.setMaxTableSize(Math.min(v, 4096));
          break;
        case F.SETTINGS_ENABLE_PUSH:
          if (v > 1) return this.fail(H2_PROTOCOL_ERROR, 'ENABLE_PUSH above 1');
          break;
        case F.SETTINGS_MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = v;
          break;
        case F.SETTINGS_INITIAL_WINDOW_SIZE: {
          if (v > F.MAX_WINDOW) return this.fail(H2_FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > F.MAX_WINDOW) return this.fail(H2_FLOW_CONTROL_ERROR, 'stream window overflow');
          }
          break;
        }
        case F.SETTINGS_MAX_FRAME_SIZE:
          if (v < F.DEFAULT_MAX_FRAME || v > F.MAX_FRAME_LIMIT) return this.fail(H2_PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
          this.peerMaxFrame = v;
          break;
        default:
          break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
      }
    }
    this.w.settingsAck();
    this.schedule();
    this.onPeerLimits();
    this.pumpAll();
  }

  #onWindowUpdate(id: number, inc: number): void {
    if (id === 0) {
      if (inc === 0) return this.fail(H2_PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > F.MAX_WINDOW) return this.fail(H2_FLOW_CONTROL_ERROR, 'connection window overflow');
      return this.pumpAll();
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (this.isIdle(id)) return this.fail(H2_PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      // For a stream that is gone: legal (RFC 9113 §6.9), and common: Go's client returns
      // window as its app reads a response it already has whole. Useless work all the same,
      // so a flood is still charged, at an eighth of a control frame each.
      if ((++this.#lateUpdates & 7) === 0) this.charge(this.#control, 'WINDOW_UPDATE flood');
      return;
    }
    if (inc === 0) return this.streamError(s, H2_PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    s.sendWindow += inc;
    if (s.sendWindow > F.MAX_WINDOW) return this.streamError(s, H2_FLOW_CONTROL_ERROR, 'stream window overflow');
    if (s.outQ !== null || s.endQueued) {
      if (!this.socketBlocked && s.pump()) this.#blocked.delete(s);
    }
  }

  // ---- abuse, errors, closing ----

  /** Takes one unit of a budget; false (and the connection closed) when it is spent. */
  protected charge(b: Budget, what: string): boolean {
    if (b.take()) return true;
    this.abuse('MESH_H2_ABUSE', what);
    return false;
  }

  protected abuse(code: ProxyErrorCode, detail: string): void {
    this.options.onAbuse?.(code, detail);
    this.fail(H2_ENHANCE_YOUR_CALM, detail, true);
  }

  /** A connection error: GOAWAY with the code, every stream reset, the socket closed. */
  fail(code: number, why: string, abuse = false): void {
    if (this.dead) return;
    this.w.goaway(this.lastPeerId, code, why.slice(0, 64));
    const out = this.w.take();
    if (out !== null && !this.socket.destroyed) {
      if (this.#sealed !== undefined) this.#sealed.write(out);
      else this.socket.write(out);
    }
    this.#teardown(this.lostReset(code, why, abuse, true));
    // FIN, then linger reading and discarding (#onBytes drops input once dead)
    // until the peer closes or GOAWAY_LINGER_MS pass. Closing at once with the
    // peer's flood unread makes our kernel answer with RST, and the peer's
    // kernel then drops the GOAWAY it had not yet read: the client never
    // learns why (seen in test/h2-abuse.test.ts). Go and nghttp2 linger too.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), GOAWAY_LINGER_MS).unref();
  }

  /** Graceful close: GOAWAY(NO_ERROR); in-flight streams finish, then the socket closes. */
  close(): void {
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.w.goaway(this.role === 'server' ? this.lastPeerId : 0, H2_NO_ERROR, '');
    this.schedule();
    this.onPeerLimits();
    if (this.streams.size === 0 && this.idle()) this.#finish();
  }

  /** Closes at once: every stream reset. */
  destroy(): void {
    if (this.dead) return;
    this.#teardown(this.lostReset(0x8, 'connection destroyed', false, true));
    this.socket.destroy();
  }

  #finish(): void {
    if (this.dead) return;
    this.#flush();
    this.#teardown(this.lostReset(0x8, 'connection closed', false, true));
    this.socket.destroySoon();
  }

  readonly #onIdle = (): void => {
    if (this.streams.size === 0 && this.idle()) this.close();
  };

  /** A keepalive PING is out and nothing was read since. */
  #pingOut = false;

  /** keepaliveMs with no traffic either way: a PING; the next one with nothing read: the peer is gone. */
  readonly #onQuiet = (): void => {
    if (this.dead) return;
    if (this.#pingOut) {
      this.#teardown(this.lostReset(0x8, `peer silent: no answer to a PING within ${this.options.keepaliveMs} ms`, false, true));
      this.socket.destroy();
      return;
    }
    this.#pingOut = true;
    this.w.ping(false, KEEPALIVE_PING);
    this.schedule();
  };

  // The peer closed or the socket failed without GOAWAY (a client exiting):
  // every stream is reset and the socket destroyed, never left half-open.
  readonly #onLost = (): void => {
    if (!this.dead) this.#teardown(this.lostReset(0x8, 'connection lost', false, true));
    this.socket.destroy();
  };

  #teardown(r: StreamReset): void {
    this.dead = true;
    clearTimeout(this.#deferredTimer);
    this.#deferredResets.length = 0;
    this.#reader.stop();
    this.#contParts = [];
    const open = [...this.streams.values()];
    for (const s of open) s.cut(r, !s.closed && !(s.endDelivered && s.localEnded));
    this.streams.clear();
    this.#blocked.clear();
    this.onTeardown(r);
    this.w.release();
    this.options.onClose?.();
  }

  /** Role cleanup at teardown (client: queued requests fail). */
  protected abstract onTeardown(r: StreamReset): void;
}
