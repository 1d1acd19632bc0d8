// A fixed-rate HTTP/1.1 load generator (what wrk2 does, which Debian does not package).
//
// Requests follow a timetable: request i is due at t0 + i/rate. Its latency is measured from
// that due time, not from when it was actually written, so a stall anywhere (proxy, server,
// this generator) shows up in the tail instead of silently delaying the requests behind it
// ("coordinated omission"). Due requests wait for a free keep-alive connection; none is
// pipelined. Bounded: rate × duration requests, then at most --drain seconds for stragglers.
//
// Usage: fixed-rate --host H --port P [--rate 1000] [--duration 10] [--warmup 1] [--connections 10] [--drain 5]
// Prints one JSON line (FixedRateResult) on stdout.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getRequest, ResponseReader } from './http1.js';
import { percentiles, type Percentiles } from './stats.js';

export interface FixedRateResult {
  rate: number;
  durationS: number;
  connections: number;
  scheduled: number;
  completed: number;
  non2xx: number;
  /** Requests lost to a connection error or reset. */
  errors: number;
  /** Requests still unanswered (or never sent) when the drain time ran out. */
  timeouts: number;
  achievedRps: number;
  /** From the due time to the end of the response: what a user on the timetable saw. */
  latencyMs: Percentiles;
  /** From the actual write to the end of the response. */
  serviceMs: Percentiles;
  /** How late requests were written after their due time (generator or connection queueing). */
  sendLagMs: Percentiles;
  /** Requests over 1 ms, by second of the timetable: a reclaim, a GC or a neighbour shows as a cluster, noise as a spread. */
  over1msBySecond: number[];
  /** Wall clock (ms since the epoch) of the first measured request's due time, to line the seconds up with proxy logs. */
  startedAtMs: number;
  /**
   * The warm-up, at the same rate, reported apart: after a saturating load it holds what a path
   * does while load falls (a mesh proxy gives memory back then, and V8 compiles again what that
   * dropped), which the measured seconds after it no longer show.
   */
  warmup?: { seconds: number; latencyMs: Percentiles; over1msBySecond: number[] };
  firstError?: string;
}

interface Conn {
  socket: Socket;
  reader: ResponseReader;
  dead: boolean;
  /** Timetable index of the request in flight, -1 when idle; and when it was written. */
  index: number;
  sent: number;
}

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '10' },
    drain: { type: 'string', default: '5' },
  },
});
const host = values.host ?? '';
const port = Number(values.port);
const rate = Number(values.rate);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const nConns = Number(values.connections);
const drainMs = Number(values.drain) * 1000;
if (!host || !(port > 0) || !(rate > 0) || !(durationS > 0) || !(warmupS >= 0) || !(nConns > 0) || !(drainMs >= 0)) {
  process.stderr.write('usage: fixed-rate --host H --port P [--rate N] [--duration S] [--warmup S] [--connections N] [--drain S]\n');
  process.exit(2);
}

const request = getRequest(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const interval = 1000 / rate;
// The timetable starts with a warm-up at the same rate, not recorded: the first few hundred
// requests run while V8 is still compiling this loop, and their delays would be ours, not the path's.
const warm = Math.round(rate * warmupS);
const measured = Math.round(rate * durationS);
const total = warm + measured;
const latency = new Float64Array(measured);
const service = new Float64Array(measured);
const lag = new Float64Array(measured);
const over1ms = new Array<number>(Math.ceil(durationS)).fill(0);
const warmLatency = new Float64Array(warm);
const warmOver1ms = new Array<number>(Math.ceil(warmupS)).fill(0);
let warmDone = 0;
let done = 0; // measured requests answered
let settled = 0; // all requests answered or lost
let non2xx = 0;
let errors = 0;
let lastAnswer = 0;
let firstError: string | undefined;

// Requests that are due but wait for a free connection, oldest first (timetable indices).
const queue = new Int32Array(total);
let qHead = 0;
let qTail = 0;
const idle: Conn[] = [];
let next = 0; // timetable index of the next request
let t0 = 0;
let finished = false;
const due = (i: number): number => t0 + i * interval;

// Reads land in one reused buffer (handled synchronously), so receiving allocates nothing
// and the generator's own garbage collections stay out of the latencies.
const readBuffer = Buffer.allocUnsafe(64 * 1024);

function open(): Conn {
  const c: Conn = { socket: undefined!, reader: undefined!, dead: false, index: -1, sent: NaN };
  c.reader = new ResponseReader((status) => answered(c, status));
  c.socket = connect({
    host,
    port,
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        try {
          c.reader.push(Buffer.from(buf.buffer, buf.byteOffset, n));
        } catch (err) {
          lost(c, err as Error);
        }
        return true;
      },
    },
  });
  c.socket.on('connect', () => free(c));
  c.socket.on('error', (err) => lost(c, err));
  c.socket.on('close', () => lost(c, new Error('connection closed by peer')));
  return c;
}

function answered(c: Conn, status: number): void {
  const now = performance.now();
  if (c.index < 0) return lost(c, new Error(`unsolicited response ${status}`));
  const l = now - due(c.index);
  if (c.index >= warm) {
    latency[done] = l;
    if (l > 1) over1ms[Math.min(over1ms.length - 1, Math.floor((c.index - warm) / rate))]!++;
    service[done] = now - c.sent;
    lag[done] = c.sent - due(c.index);
    done++;
    lastAnswer = now;
    if (status < 200 || status > 299) non2xx++;
  } else {
    warmLatency[warmDone++] = l;
    if (l > 1) warmOver1ms[Math.min(warmOver1ms.length - 1, Math.floor(c.index / rate))]!++;
  }
  settled++;
  c.index = -1;
  free(c);
}

/** A connection failed: its request is an error, and a fresh connection takes its place. */
function lost(c: Conn, err: Error): void {
  if (c.dead) return; // 'error' is followed by 'close'
  c.dead = true;
  c.socket.destroy();
  const i = idle.indexOf(c);
  if (i >= 0) idle.splice(i, 1);
  if (c.index >= 0) {
    settled++;
    if (c.index >= warm) errors++;
  }
  firstError ??= err.message;
  if (!finished) setTimeout(() => open(), 10); // do not spin on a peer that refuses at once
}

function free(c: Conn): void {
  if (qHead < qTail) send(c, queue[qHead++]!);
  else idle.push(c);
}

function send(c: Conn, index: number): void {
  c.index = index;
  c.sent = performance.now();
  c.socket.write(request);
}

function tick(): void {
  const now = performance.now();
  while (next < total && due(next) <= now) {
    const c = idle.pop();
    if (c) send(c, next);
    else queue[qTail++] = next;
    next++;
  }
  if (next >= total) return;
  // Timers fire a millisecond or more late; within 2 ms of the next due time the loop spins
  // (setImmediate still polls sockets each turn), so requests leave on time. It costs the
  // generator's own CPU, which is why it is pinned apart from what it measures.
  const wait = due(next) - performance.now();
  if (wait > 2) setTimeout(tick, wait - 1.5);
  else setImmediate(tick);
}

function finish(): void {
  finished = true;
  const start = due(warm);
  const elapsedMs = Math.max(lastAnswer - start, durationS * 1000);
  const result: FixedRateResult = {
    rate,
    durationS,
    connections: nConns,
    scheduled: measured,
    completed: done,
    non2xx,
    errors,
    timeouts: measured - done - errors,
    achievedRps: (done * 1000) / elapsedMs,
    latencyMs: percentiles(latency.subarray(0, done)),
    serviceMs: percentiles(service.subarray(0, done)),
    sendLagMs: percentiles(lag.subarray(0, done)),
    over1msBySecond: over1ms,
    startedAtMs: Date.now() - (performance.now() - start),
    ...(warm > 0 ? { warmup: { seconds: warmupS, latencyMs: percentiles(warmLatency.subarray(0, warmDone)), over1msBySecond: warmOver1ms } } : {}),
    ...(firstError === undefined ? {} : { firstError }),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

for (let i = 0; i < nConns; i++) open();
// Connections get a moment to open before the clock starts, so connecting is not measured.
setTimeout(() => {
  t0 = performance.now();
  tick();
  const last = due(total - 1);
  const check = setInterval(() => {
    if ((next >= total && settled >= total) || performance.now() > last + drainMs) {
      clearInterval(check);
      finish();
    }
  }, 20);
}, 200);
