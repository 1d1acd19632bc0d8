// The proxy pair in one process, for profiling the request path without a lab: an HTTP/1
// client proxy (outbound) → h2 between proxies (plain TCP: the forwarder's testkit) → server
// proxy (inbound) → HTTP/1 backend. Load and backend run in a child process, so this process's
// CPU, allocation and GC are the two proxies' alone. Not a test and not the bench (no TLS, no
// kernel interception); it answers "what does a request cost our JavaScript".
//
//   node --max-semi-space-size=4 --single-threaded-gc dist/bench/micro.js [--seconds 5]
//        [--connections 50] [--heap-prof-dir DIR]   (run with root not needed)
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector/promises';
import { addr, startMesh } from '../proxy/forward/testkit.js';
import { H1Pool } from '../proxy/h1/index.js';
import { resetAndDestroy } from '../proxy/transport/tls.js';

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nServer: micro\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nhello, world!!\n');
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: api.test\r\nUser-Agent: micro\r\nAccept: */*\r\n\r\n');

/** The child: a backend answering every head, and `connections` clients each keeping one request in flight. */
async function child(): Promise<void> {
  const backend = net.createServer({ noDelay: true }, (s) => {
    let tail = '';
    s.on('data', (d: Buffer) => {
      const text = tail + d.toString('latin1');
      let at = 0;
      let n = 0;
      for (;;) {
        const end = text.indexOf('\r\n\r\n', at);
        if (end < 0) break;
        n++;
        at = end + 4;
      }
      tail = text.slice(at);
      for (let i = 0; i < n; i++) s.write(RESPONSE);
    });
    s.on('error', () => {});
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  process.send!({ backend: (backend.address() as net.AddressInfo).port });
  const [msg] = (await once(process, 'message')) as [{ proxy: number; connections: number; seconds: number }];
  let done = 0;
  let stop = false;
  const marker = RESPONSE.subarray(RESPONSE.length - 15);
  const clients: Promise<void>[] = [];
  for (let c = 0; c < msg.connections; c++) {
    clients.push(
      new Promise<void>((resolve) => {
        const s = net.connect({ port: msg.proxy, host: '127.0.0.1', noDelay: true });
        s.on('connect', () => s.write(REQUEST));
        s.on('data', (d: Buffer) => {
          // One request in flight per connection: a chunk ending in the body ends the response.
          if (d.subarray(d.length - 15).equals(marker)) {
            done++;
            if (stop) {
              s.destroy();
              resolve();
            } else s.write(REQUEST);
          }
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      }),
    );
  }
  // Warm-up, then the measured window; the parent reads its counters at the two messages.
  await new Promise((r) => setTimeout(r, 2000));
  process.send!({ start: done });
  await new Promise((r) => setTimeout(r, msg.seconds * 1000));
  process.send!({ end: done });
  stop = true;
  await Promise.all(clients);
  backend.close();
}

const session = new Session();

/**
 * Every allocation, including what the next scavenge frees (that garbage is the cost); or with
 * `retained`, only what is still in the heap at the end: objects that outlived the young
 * generation, promoted and kept until a full collection (what grows RSS under load).
 */
async function startSampling(retained: boolean): Promise<void> {
  session.connect();
  const all = { includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
  await session.post('HeapProfiler.startSampling', { samplingInterval: 256, ...(retained ? {} : all) } as never);
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Bytes allocated per function (self), and per function with its caller, largest first. */
async function report(_: number): Promise<void> {
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  const self = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode, parent: string): void => {
    const f = n.callFrame;
    const name = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/dist\//, '').replace(/^node:internal\//, '')}:${f.lineNumber + 1}`;
    if (n.selfSize > 0) {
      const key = `${name}  <- ${parent}`;
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, name);
  };
  walk(profile.head, '');
  process.stdout.write(`sampled allocations: ${(total / 1048576).toFixed(1)} MB\n`);
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
}

async function parent(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' }, allocations: { type: 'boolean', default: false }, retained: { type: 'boolean', default: false } } });
  const kid = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: [] });
  const [first] = (await once(kid, 'message')) as [{ backend: number }];
  const pool = (dial: () => Promise<net.Socket>): H1Pool => new H1Pool({ dial, reset: resetAndDestroy });
  const mesh = await startMesh('h1', addr(first.backend), pool);
  let gcs = 0;
  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs++;
      gcMs += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  kid.send({ proxy: mesh.client.port, connections: Number(values.connections), seconds: Number(values.seconds) });
  let at: { requests: number; cpu: NodeJS.CpuUsage; gcs: number; gcMs: number; t: number } | undefined;
  await new Promise<void>((resolve) => {
    kid.on('message', (m: { start?: number; end?: number }) => {
      if (m.start !== undefined && (values.allocations || values.retained)) void startSampling(values.retained === true);
      if (m.start !== undefined) at = { requests: m.start, cpu: process.cpuUsage(), gcs, gcMs, t: performance.now() };
      if (m.end !== undefined && at) {
        const cpu = process.cpuUsage(at.cpu);
        const n = m.end - at.requests;
        const secs = (performance.now() - at.t) / 1000;
        const heap = process.memoryUsage();
        process.stdout.write(
          `${n} requests in ${secs.toFixed(1)} s: ${Math.round(n / secs)} req/s; ` +
            `CPU ${((cpu.user + cpu.system) / n).toFixed(1)} µs/request for both proxies (user ${(cpu.user / n).toFixed(1)}, sys ${(cpu.system / n).toFixed(1)}); ` +
            `${(((gcs - at.gcs) * 1000) / n).toFixed(2)} GCs/1000 requests, ${(((gcMs - at.gcMs) * 1000) / n).toFixed(2)} µs GC/request; ` +
            `heap ${(heap.heapUsed / 1048576).toFixed(1)} MB, rss ${(heap.rss / 1048576).toFixed(1)} MB\n`,
        );
        resolve();
      }
    });
  });
  if (values.allocations || values.retained) await report(at!.requests);
  await once(kid, 'exit');
  await mesh.close();
}

if (process.argv.includes('--child')) await child();
else await parent();
