// Test helpers for proxy/h2: servers on port 0, recording listeners, an echo handler.
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { HeaderList, RequestHead, RequestListener, ResponseHead, ResponseListener, ServerHandler, ServerStream, StreamReset } from '../message/types.js';
import { H2ClientConnection } from './client.js';
import type { H2Options } from './limits.js';
import { H2ServerConnection } from './server.js';

export function sha(b: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const c of Array.isArray(b) ? b : [b]) h.update(c);
  return h.digest('hex');
}

export interface OurServer {
  port: number;
  conns: H2ServerConnection[];
  close(): Promise<void>;
}

/** Our server role on a loopback listener. */
export async function ourServer(handler: ServerHandler, options: H2Options = {}): Promise<OurServer> {
  const conns: H2ServerConnection[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    conns.push(new H2ServerConnection(sock, handler, options));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    conns,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

export async function ourClient(port: number, options: H2Options = {}): Promise<H2ClientConnection> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  return new H2ClientConnection(sock, options);
}

export function get(path: string, headers: HeaderList = [], method = 'GET'): RequestHead {
  return { method, target: path, scheme: 'http', authority: 'test.local', version: 20, headers };
}

/** Records one response; `done` settles at its end or reset. */
export class Recorder implements ResponseListener {
  head: ResponseHead | undefined;
  chunks: Buffer[] = [];
  bytes = 0;
  trailers: HeaderList | undefined;
  reset: StreamReset | undefined;
  continued = false;
  writable = 0;
  /** Return false from onData while this is set (a slow reader). */
  stall = false;
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  onContinue(): void {
    this.continued = true;
  }
  onResponse(head: ResponseHead): void {
    this.head = head;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    this.bytes += chunk.length;
    return !this.stall;
  }
  onEnd(trailers: HeaderList | undefined): void {
    this.trailers = trailers;
    this.#resolve();
  }
  onReset(r: StreamReset): void {
    this.reset = r;
    this.#resolve();
  }
  onWritable(): void {
    this.writable++;
  }
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Echo handler: 200 with the request body back; x-trailers: yes answers with
 * trailers; x-status answers a trailers-only response with that status.
 */
export class Echo implements ServerHandler {
  readonly seen: ServerStream[] = [];
  readonly resets: StreamReset[] = [];
  onRequest(s: ServerStream): void {
    this.seen.push(s);
    const h = s.head.headers;
    const val = (n: string): string | undefined => {
      for (let i = 0; i < h.length; i += 2) if (h[i] === n) return h[i + 1];
      return undefined;
    };
    const only = val('x-status');
    const resets = this.resets;
    if (only !== undefined) {
      s.listen({ onData: () => true, onEnd: () => {}, onReset: (r) => resets.push(r), onWritable: () => {} });
      return s.respond({ status: Number(only), reason: '', version: 20, headers: ['grpc-status', '13'] }, true);
    }
    if (s.expectsContinue) s.sendContinue();
    const l: RequestListener = {
      onData: (c) => s.write(c),
      onEnd: (t) => s.end(val('x-trailers') === 'yes' ? ['x-sum', 'ok', ...(t ?? [])] : undefined),
      onReset: (r) => resets.push(r),
      onWritable: () => s.resume(),
    };
    s.listen(l);
    s.respond({ status: 200, reason: '', version: 20, headers: ['content-type', 'application/octet-stream', 'X-Upper', 'kept'] }, false);
  }
}

export function eventually(check: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (check()) return resolve();
      if (Date.now() > until) return reject(new Error('condition not met in time'));
      setTimeout(tick, 5);
    };
    tick();
  });
}
