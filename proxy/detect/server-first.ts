// Server-speaks-first detection: detection on the client's first bytes, with
// the upstream opened early when the client is quiet, so that a server that
// speaks first (MySQL's greeting, an SMTP banner, NATS's INFO) is heard in
// milliseconds instead of after the detect timeout (Linkerd's 10 s stall).
//
//   client speaks within the window → detection as always; nothing opened early
//   client quiet for the window     → open the upstream, wait on both sides:
//     server bytes (or its FIN) first → 'server-first': opaque at once, on that upstream
//     client bytes first → detection goes on; the upstream is handed to an
//       opaque/TLS verdict, closed for HTTP (the HTTP stage dials its own)
//     upstream unreachable → 'upstream-failed': forwarded as opaque, which fails with its code
//   destination learned as server-first → the upstream opens at accept
//
// No byte is read from the upstream here: its 'readable' only tells that
// something came, and what came stays in its buffer for the forwarder.
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import type { Log } from '../log.js';
import type { DetectOutcome, ProxyMetrics } from '../metrics.js';
import type { Direction } from '../target.js';
import { startDetect, type DetectOptions } from './index.js';
import type { ServerFirstMemory } from './learned.js';
import type { Peek } from './peek.js';
import { Budget } from '../h2/limits.js';
import { SERVER_FIRST, UPSTREAM_FAILED, type Detected } from './verdict.js';

const ignore = (): void => {};

export interface ServerFirstOptions {
  direction: Direction;
  detect: DetectOptions;
  /** Quiet this long after accept: the upstream is opened. 0: never (detection alone, as before). */
  windowMs: number;
  memory: ServerFirstMemory;
  /**
   * Destinations whose client, quiet through the window, then spoke HTTP: their quiet clients
   * get no early upstream while remembered. A slow HTTP client (one starved of CPU, a pool
   * that connects ahead of use) otherwise costs an upstream connection each time (to a meshed
   * destination a TLS handshake on both proxies, ~1 ms of CPU each here) that HTTP closes unused.
   */
  clientFirst?: ServerFirstMemory;
  metrics: ProxyMetrics;
  log: Log;
}

/** When to open the upstream early: after the quiet window, at once, or never. */
export type EarlyMode = 'window' | 'at-once' | 'never';

export function outcomeOf(d: Detected): DetectOutcome {
  if (d.kind !== 'opaque') return d.kind;
  switch (d.reason) {
    case 'unknown-protocol':
    case 'too-large':
      return 'opaque';
    case 'timeout':
      return 'timeout';
    case 'eof':
    case 'error':
      return 'closed';
    case 'server-first':
      return 'server-first';
    case 'upstream-failed':
      return 'upstream-failed';
  }
}

/** The verdict, and the upstream opened while detecting (if any), which the caller uses or drops. */
export class FirstBytes {
  #upstream: Promise<Socket> | undefined;

  constructor(
    readonly det: Detected,
    upstream: Promise<Socket> | undefined,
    private readonly direction: Direction,
    private readonly metrics: ProxyMetrics,
  ) {
    this.#upstream = upstream;
  }

  /** An upstream was opened early. */
  get early(): boolean {
    return this.#upstream !== undefined;
  }

  /** The upstream to forward on (its buffered bytes included); undefined when none was opened. */
  use(): Promise<Socket> | undefined {
    const u = this.#upstream;
    this.#upstream = undefined;
    if (u === undefined) return undefined;
    this.metrics.earlyUpstream(this.direction, this.det === UPSTREAM_FAILED ? 'failed' : 'used');
    // Reset while we waited: its 'close' is gone, and a forwarder waiting for it would wait forever.
    const ready = u.then((s) => (s.destroyed ? Promise.reject(new ProxyError('MESH_UPSTREAM_RESET', 'upstream reset before forwarding began')) : s));
    // Whoever uses it sees the rejection; one that never does (its client gone) must not crash the process.
    ready.catch(ignore);
    return ready;
  }

  /** The protocol found cannot use the upstream (HTTP dials its own; a peer proxy's mTLS is terminated): close it. */
  drop(): void {
    const u = this.#upstream;
    if (u === undefined) return;
    this.#upstream = undefined;
    this.metrics.earlyUpstream(this.direction, 'closed');
    u.then((s) => s.destroy(), ignore);
  }
}

// Early upstreams for quiet clients: a burst, then a rate. Beyond it a quiet
// client waits for detection as before. Without it a burst of silent
// connections (a slowloris, or 500 clients connecting at once) makes the
// proxy open as many upstream connections: an amplifier, and a burst of
// work that cost the other clients ~50-100 ms (test/limits.test.ts).
// Destinations learned as server-first open at once and are not counted.
const EARLY_BURST = 64;
const EARLY_PER_SECOND = 200;

export class ServerFirstDetector {
  readonly #early = new Budget(EARLY_BURST, EARLY_PER_SECOND, () => performance.now());

  constructor(readonly o: ServerFirstOptions) {}

  /** A port configured opaque: decided without waiting, counted as such. */
  byPort(): void {
    this.o.metrics.detected(this.o.direction, 'opaque-by-port', 0);
  }

  /**
   * Detects on `client`; `key` is the destination as learned ("10.0.0.7:3306"),
   * `dial` opens its upstream. Never rejects. An HTTP verdict has the early
   * upstream closed already; any other leaves it to the caller (use or drop).
   */
  run(client: Socket, startedAt: number, key: string, dial: () => Promise<Socket>, mode: EarlyMode = 'window'): Promise<FirstBytes> {
    const { o } = this;
    const learned = mode !== 'never' && o.memory.has(key);
    // Known to be spoken to first: detection alone, as with the window off.
    const clientFirst = !learned && mode === 'window' && o.clientFirst?.has(key) === true;
    const early = learned ? 'at-once' : clientFirst || (mode === 'window' && !(o.windowMs > 0)) ? 'never' : mode;
    return new Promise((resolve) => {
      let upstream: Promise<Socket> | undefined;
      let watched: Socket | undefined;
      let decided = false;
      let serverSpoke = false;
      /** The client said nothing through the window. */
      let quietPassed = false;
      // Assigned before any callback below can run: they all come from I/O or timers.
      let peek: Peek | undefined;

      const onServer = (): void => {
        if (decided) return;
        serverSpoke = watched !== undefined && watched.readableLength > 0;
        peek?.abort(SERVER_FIRST);
      };
      const onGone = (): void => {
        if (!decided) peek?.abort(UPSTREAM_FAILED);
      };
      const open = (): void => {
        upstream = dial().then(
          (s) => {
            s.on('error', ignore);
            if (decided) return s;
            watched = s;
            s.on('readable', onServer);
            s.once('close', onGone);
            return s;
          },
          (e: unknown) => {
            onGone();
            throw e;
          },
        );
        // Rejections are seen by whoever uses it; one that is dropped must not be unhandled.
        upstream.catch(ignore);
      };
      const decide = (det: Detected): void => {
        decided = true;
        if (watched !== undefined) {
          watched.removeListener('readable', onServer);
          watched.removeListener('close', onGone);
        }
        o.metrics.detected(o.direction, outcomeOf(det), (performance.now() - startedAt) / 1000);
        if (det === SERVER_FIRST && serverSpoke) {
          if (o.memory.learn(key)) {
            o.metrics.serverFirstLearned(o.direction);
            o.log.info('server speaks first', { direction: o.direction, dst: key, learned: o.memory.size });
          }
        } else if (learned && (peek?.received ?? 0) > 0 && det !== SERVER_FIRST && det !== UPSTREAM_FAILED) {
          // Known as server-first, yet the client spoke while the server stayed silent: it changed.
          if (o.memory.forget(key)) o.log.info('server no longer speaks first', { direction: o.direction, dst: key, protocol: outcomeOf(det) });
        }
        if ((det.kind === 'http1' || det.kind === 'h2') && quietPassed && o.clientFirst?.learn(key) === true) {
          o.log.debug('client speaks first', { direction: o.direction, dst: key, protocol: det.kind });
        } else if (clientFirst && det.kind === 'opaque' && det.reason === 'timeout') {
          // Nobody spoke all through the detect timeout: the server may speak first after all (a
          // new workload at the address). The next connection gets the window again.
          o.clientFirst!.forget(key);
        }
        const fb = new FirstBytes(det, upstream, o.direction, o.metrics);
        if (det.kind === 'http1' || det.kind === 'h2') fb.drop();
        resolve(fb);
      };

      // Bytes the client sent before detection began (while discovery answered) are
      // read in the poll phase after the window's timer: quiet is judged after it.
      const onQuiet = (): void =>
        void setImmediate(() => {
          if (decided || (peek?.received ?? 0) > 0) return;
          quietPassed = true;
          if (this.#early.take()) open();
          else o.metrics.earlyUpstream(o.direction, 'skipped');
        });
      // The window counts from accept: a client quiet while discovery answered was quiet then too.
      const windowLeft = o.windowMs - (performance.now() - startedAt);
      peek = startDetect(client, o.detect, decide, early === 'window' ? { ms: windowLeft, onQuiet } : undefined);
      if (early === 'at-once') open();
    });
  }
}
