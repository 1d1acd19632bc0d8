// Opens many keep-alive connections, makes one request on each (so every hop has really set
// the connection up, as a pooled client would), then holds them idle while the bench reads the
// proxies' memory. Bounded: it lets go after --hold seconds even if nobody tells it to.
//
// Usage: hold-conns --host H --port P [--count 1000] [--parallel 100] [--hold 60]
// Prints one JSON line (HoldResult) once all are open (or failed), then holds until SIGTERM,
// end of stdin, or the hold time.
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { getRequest, ResponseReader } from './http1.js';

export interface HoldResult {
  open: number;
  failed: number;
  non2xx: number;
  openMs: number;
  firstError?: string;
}

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    count: { type: 'string', default: '1000' },
    parallel: { type: 'string', default: '100' },
    hold: { type: 'string', default: '60' },
  },
});
const host = values.host ?? '';
const port = Number(values.port);
const count = Number(values.count);
const parallel = Number(values.parallel);
const holdMs = Number(values.hold) * 1000;
if (!host || !(port > 0) || !(count > 0) || !(parallel > 0) || !(holdMs > 0)) {
  process.stderr.write('usage: hold-conns --host H --port P [--count N] [--parallel N] [--hold S]\n');
  process.exit(2);
}

const request = getRequest(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const sockets: Socket[] = [];
let failed = 0;
let non2xx = 0;
let lost = 0;
let firstError: string | undefined;

/** Resolves once the connection has answered its request (kept) or failed (counted). */
function one(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, noDelay: true });
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      failed++;
      firstError ??= why;
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(() => fail('no response within 10 s'), 10_000);
    const reader = new ResponseReader((status) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (status < 200 || status > 299) non2xx++;
      sockets.push(socket);
      resolve();
    });
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        fail((err as Error).message);
      }
    });
    socket.on('error', (err) => fail(err.message));
    // A held connection that the far side closes counts as lost when the bench reads the result.
    socket.on('close', () => {
      if (settled) lost++;
      fail('closed before responding');
    });
  });
}

const started = Date.now();
let launched = 0;
// A bounded number of connects at a time: a thousand SYNs at once would overflow listen backlogs.
await Promise.all(
  Array.from({ length: Math.min(parallel, count) }, async () => {
    while (launched < count) {
      launched++;
      await one();
    }
  }),
);
const result: HoldResult = { open: sockets.length, failed, non2xx, openMs: Date.now() - started, ...(firstError ? { firstError } : {}) };
process.stdout.write(`${JSON.stringify(result)}\n`);

const release = (): void => {
  // Still open at the end? The bench prints this so a proxy that dropped idle connections shows.
  process.stdout.write(`${JSON.stringify({ lostWhileHeld: lost })}\n`);
  for (const s of sockets) s.destroy();
  process.exit(0);
};
setTimeout(release, holdMs);
process.once('SIGTERM', release);
process.stdin.on('end', release).resume();
