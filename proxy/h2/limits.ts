// Options of an HTTP/2 connection and the limits that keep one peer from
// costing more than its own connection: windows, stream counts, header sizes
// and the budgets for frames that are cheap to send and costly to handle.
import type { ProxyErrorCode } from '../errors.js';

export interface Limits {
  maxConcurrentStreams: number;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what one stream may have in flight toward us. */
  streamWindow: number;
  /** Our connection receive window. */
  connectionWindow: number;
  /** Received bytes held for paused streams whose connection window is credited anyway. */
  holdBudget: number;
  maxHeaderListSize: number;
  /** Our SETTINGS_MAX_FRAME_SIZE: the longest frame the peer may send. */
  maxFrameSize: number;
  /** A compressed header block (HEADERS + CONTINUATION) beyond this closes the connection. */
  maxHeaderBlock: number;
  /** Streams reset by the peer before we answered them: burst, then per second. */
  resetBurst: number;
  resetRate: number;
  /** SETTINGS, PING, PRIORITY, empty DATA/CONTINUATION, useless WINDOW_UPDATE: burst, per second. */
  controlBurst: number;
  controlRate: number;
  /** Our own RST_STREAM(NO_ERROR) after an early complete response (peers rate-limit resets). */
  ourResetBurst: number;
  ourResetRate: number;
}

// 'app': an application's client or server. Windows like browsers and Go
// use: a slow app can hold 64 KiB per stream. 'mesh': the peer proxy, one
// connection multiplexing many clients: windows above a LAN bandwidth-delay
// product (10 Gb/s x 0.5 ms = 625 KB). Measured on loopback, 4 streams x
// 256 MiB: 1/4 MiB (stream/connection) moved as much as 4/16 MiB with half
// the RSS (~100 vs ~190 MB); 256 KiB/1 MiB was ~20% slower. Reset budgets
// are sized so that cancellations relayed from many clients never look
// like an attack.
export type Peer = 'app' | 'mesh' | 'tunnel';

const MESH: Limits = {
  maxConcurrentStreams: 1000,
  // 256 KiB per stream: a client that stops reading holds at most its streams'
  // windows here (100 streams: 25 MiB), within the hold budget, so the
  // connection every client shares keeps flowing (bulk ~20% slower than 1 MiB).
  streamWindow: 256 << 10,
  connectionWindow: 4 << 20,
  holdBudget: 32 << 20,
  maxHeaderListSize: 64 * 1024,
  // A socket read (64 KiB) in one DATA frame: a quarter of the frames and headers of 16 KiB
  // ones for bulk between the proxies (gathered whole as TLS records bring it, read in place).
  maxFrameSize: 64 * 1024,
  maxHeaderBlock: 128 * 1024,
  resetBurst: 100_000,
  resetRate: 50_000,
  controlBurst: 20_000,
  controlRate: 10_000,
  ourResetBurst: 1000,
  ourResetRate: 500,
};

export const PROFILES: Record<Peer, Limits> = {
  app: {
    maxConcurrentStreams: 100,
    streamWindow: 65535,
    connectionWindow: 1 << 20,
    // Every stream's window (100 × 64 KiB): paused streams alone never stall the rest.
    holdBudget: 8 << 20,
    maxHeaderListSize: 64 * 1024,
    maxFrameSize: 16384,
    maxHeaderBlock: 128 * 1024,
    resetBurst: 200,
    resetRate: 100,
    controlBurst: 1000,
    controlRate: 500,
    ourResetBurst: 100,
    ourResetRate: 50,
  },
  mesh: MESH,
  // 'tunnel': the peer proxy's tunnel session (proxy/tunnel.ts), each stream an opaque TCP
  // connection. Bulk through one stream is bounded by window / round trip, and between two
  // busy proxies on one core the round trip is the scheduler's: 1 GiB each way moved at
  // 117-157 MB/s with 256 KiB windows, 165-169 with 1 MiB (as with an mTLS session per
  // connection, 159-187, same run conditions). The hold budget is what keeps connections
  // that share a session independent: bytes held for an app that stopped reading are
  // credited to the connection window at once, so other streams go on. It covers 256
  // stalled streams with full windows (256 MiB; an mTLS connection each held as much in
  // kernel socket buffers, up to 6 MiB each); only past that do stalled streams slow the
  // others. Most of the 10,000 connections a session can carry are idle.
  tunnel: {
    ...MESH,
    maxConcurrentStreams: 100_000,
    streamWindow: 1 << 20,
    connectionWindow: 16 << 20,
    holdBudget: 256 << 20,
  },
};

export interface H2Options {
  /** Who is on the other end; picks the defaults above. Default 'app'. */
  peer?: Peer;
  /** Overrides of single limits. */
  limits?: Partial<Limits>;
  maxConcurrentStreams?: number;
  streamWindow?: number;
  connectionWindow?: number;
  maxHeaderListSize?: number;
  /** Close (GOAWAY) after this long without traffic and without streams. No PINGs. */
  idleTimeoutMs?: number;
  /**
   * Client role: after this long with nothing read or written, a PING; if the next such
   * period passes with nothing read either, the peer is gone (a node lost, a NAT entry
   * expired: no FIN, no RST ever comes) and the connection is failed, so its requests are
   * answered and new ones go to a fresh connection instead of waiting for TCP to give up
   * (~15 minutes). Not with idleTimeoutMs (both use the socket's inactivity timer).
   */
  keepaliveMs?: number;
  /** Bytes already read from the socket (detection peeked the preface). */
  initial?: Buffer;
  /** A peer exceeded a budget; its connection is being closed with ENHANCE_YOUR_CALM. */
  onAbuse?(code: ProxyErrorCode, detail: string): void;
  /** The connection is gone (closed, lost or failed); nothing is retained after. */
  onClose?(): void;
  /** Milliseconds clock for the budgets (tests use a fake one). */
  now?(): number;
}

/** A token bucket: `burst` at once, refilled at `rate` per second. Consulted on rare frames only. */
export class Budget {
  #tokens: number;
  #last: number;

  constructor(
    private readonly burst: number,
    private readonly rate: number,
    private readonly now: () => number,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  take(): boolean {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) * this.rate) / 1000);
    this.#last = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
