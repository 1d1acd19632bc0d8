// Frame parser and connection fuzzer: random valid frame sequences, cut at
// random points and mutated, fed to a server-role and a client-role
// connection over a fake socket. A failure is an exception escaping, or our
// side answering GOAWAY(INTERNAL_ERROR), which is how the connection reports
// a bug of its own (see connection.ts #onBytes).
//   node dist/proxy/h2/fuzz.js --iterations 1000000 --seed 3
import type { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { ServerStream } from '../message/types.js';
import { H2ClientConnection } from './client.js';
import * as F from './frames.js';
import { HpackEncoder } from './hpack/index.js';
import { H2ServerConnection } from './server.js';
import { seededRandom } from '../fuzz-random.js';

/** The socket surface connections use; output is parsed for GOAWAY codes. */
class FakeSocket {
  destroyed = false;
  onData: ((b: Buffer) => void) | undefined;
  internal = 0;
  readonly #reader = new F.FrameReader({
    onFrame: (type, _f, _id, p) => {
      if (type === F.GOAWAY && p.readUInt32BE(4) === 0x2) this.internal++;
    },
  });
  #first = true;
  on(ev: string, fn: (b: Buffer) => void): this {
    if (ev === 'data') this.onData = fn;
    return this;
  }
  write(b: Buffer): boolean {
    if (this.#first && b.subarray(0, 3).toString() === 'PRI') b = b.subarray(F.PREFACE.length);
    this.#first = false;
    this.#reader.maxFrameSize = F.MAX_FRAME_LIMIT;
    this.#reader.push(b);
    return true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  destroySoon(): void {
    this.destroyed = true;
  }
  setTimeout(): void {}
}

const handler = {
  n: 0,
  onRequest(s: ServerStream): void {
    const k = this.n++ % 4;
    s.listen({ onData: () => k !== 1, onEnd: () => s.end(k === 2 ? ['x-t', '1'] : undefined), onReset: () => {}, onWritable: () => {} });
    if (k === 3) return s.reset({ h2Code: 0x8, error: undefined as never });
    s.respond({ status: 200, reason: '', version: 20, headers: ['x', 'y'] }, false);
    s.write(Buffer.alloc(k * 1000, 1));
  },
};

const noop = { onContinue() {}, onResponse() {}, onWritable() {}, onData: () => true, onEnd() {}, onReset() {} };

function frames(r: () => number, server: boolean): Buffer {
  const enc = new HpackEncoder();
  const w = new F.FrameWriter();
  if (server) w.bytes(F.PREFACE);
  w.settings([F.SETTINGS_INITIAL_WINDOW_SIZE, Math.floor(r() * 200000), F.SETTINGS_MAX_FRAME_SIZE, 16384 + Math.floor(r() * 3) * 1000]);
  const n = 1 + Math.floor(r() * 12);
  let id = 1;
  for (let i = 0; i < n; i++) {
    const pick = Math.floor(r() * 12);
    const sid = pick < 3 || r() < 0.5 ? id : 1 + 2 * Math.floor(r() * 4);
    switch (pick) {
      case 0:
      case 1: {
        const block = server
          ? enc.encode([':method', r() < 0.8 ? 'POST' : 'CONNECT', ':scheme', 'http', ':authority', 'a', ':path', '/p', 'content-length', String(Math.floor(r() * 30)), r() < 0.1 ? 'Bad' : 'ok', 'v'])
          : enc.encode([':status', String(100 + Math.floor(r() * 4) * 100), 'x', 'y']);
        const cut = Math.floor(r() * block.length);
        if (r() < 0.3 && cut > 0) {
          w.raw(F.HEADERS, 0, sid, block.subarray(0, cut));
          w.raw(F.CONTINUATION, F.FLAG_END_HEADERS, sid, block.subarray(cut));
        } else w.raw(F.HEADERS, F.FLAG_END_HEADERS | (r() < 0.4 ? F.FLAG_END_STREAM : 0), sid, block);
        id += 2;
        break;
      }
      case 2:
      case 3:
        w.data(sid, Buffer.alloc(30), 0, Math.floor(r() * 30), r() < 0.5);
        break;
      case 4:
        w.raw(F.DATA, F.FLAG_PADDED, sid, Buffer.from([Math.floor(r() * 8), 1, 2, 3, 4]));
        break;
      case 5:
        w.rst(sid, Math.floor(r() * 14));
        break;
      case 6:
        w.ping(r() < 0.3, Buffer.alloc(8));
        break;
      case 7:
        w.windowUpdate(r() < 0.3 ? 0 : sid, Math.floor(r() * 100000));
        break;
      case 8:
        w.raw(F.PRIORITY, 0, sid, Buffer.alloc(r() < 0.9 ? 5 : 4));
        break;
      case 9:
        w.goaway(Math.floor(r() * 9), Math.floor(r() * 3), '');
        break;
      case 10:
        w.raw(Math.floor(r() * 16), Math.floor(r() * 256), sid, Buffer.alloc(Math.floor(r() * 12)));
        break;
      default:
        w.settings([Math.floor(r() * 8), Math.floor(r() * 70000)]);
    }
  }
  return Buffer.from(w.take()!);
}

function mutate(r: () => number, b: Buffer): Buffer {
  const m = Math.floor(r() * 4);
  for (let i = 0; i < m && b.length > 0; i++) {
    const at = Math.floor(r() * b.length);
    b[at] = r() < 0.5 ? Math.floor(r() * 256) : b[at]! ^ (1 << Math.floor(r() * 8));
  }
  return r() < 0.1 ? b.subarray(0, Math.floor(r() * b.length)) : b;
}

export interface FuzzResult {
  iterations: number;
  failures: string[];
}

/** Runs until `iterations` or `timeMs`, whichever comes first. */
export async function fuzz(o: { iterations: number; seed: number; timeMs?: number }): Promise<FuzzResult> {
  const r = seededRandom(o.seed);
  const failures: string[] = [];
  const until = o.timeMs === undefined ? Infinity : Date.now() + o.timeMs;
  let i = 0;
  for (; i < o.iterations && Date.now() < until; i++) {
    const server = r() < 0.6;
    const bytes = mutate(r, frames(r, server));
    const sock = new FakeSocket();
    try {
      const c = server ? new H2ServerConnection(sock as unknown as Socket, handler) : new H2ClientConnection(sock as unknown as Socket);
      if (!server) for (let k = 0; k < 3; k++) c instanceof H2ClientConnection && c.request({ method: 'POST', target: '/', scheme: 'http', authority: 'a', version: 20, headers: [] }, false, noop);
      let off = 0;
      while (off < bytes.length) {
        const n = 1 + Math.floor(r() * 64);
        sock.onData!(bytes.subarray(off, off + n));
        off += n;
      }
      c.destroy();
    } catch (err) {
      failures.push(`case ${i}: ${(err as Error).stack}`);
    }
    if (sock.internal > 0) failures.push(`case ${i}: GOAWAY(INTERNAL_ERROR) from ${server ? 'server' : 'client'} role`);
    if (failures.length > 10) break;
    if (i % 2000 === 1999) await new Promise((res) => setImmediate(res)); // let batched flushes run
  }
  return { iterations: i, failures };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string, d: number): number => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? Number(process.argv[at + 1]) : d;
  };
  const started = Date.now();
  const res = await fuzz({ iterations: arg('iterations', 100000), seed: arg('seed', 1) });
  console.log(`${res.iterations} cases in ${Date.now() - started} ms, ${res.failures.length} failures`);
  for (const f of res.failures) console.log(f);
  process.exitCode = res.failures.length > 0 ? 1 : 0;
}
