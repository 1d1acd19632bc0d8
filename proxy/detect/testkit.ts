// Test fixtures for detection: ClientHellos captured from Node's own TLS client,
// a ClientHello builder and record re-framer, loopback socket pairs, a seeded PRNG.
import { once } from 'node:events';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { parseClientHello } from './tls.js';

/** The first flight of a real `tls.connect`, captured by a plain TCP server. */
export async function captureClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = tls.connect({ ...options, host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  client.on('error', () => {}); // we hang up on it mid-handshake
  const [socket] = (await once(server, 'connection')) as [Socket];
  const chunks: Buffer[] = [];
  for await (const chunk of socket) {
    chunks.push(chunk as Buffer);
    if (parseClientHello(Buffer.concat(chunks)).kind !== 'need-more') break;
  }
  socket.destroy();
  client.destroy();
  server.close();
  return Buffer.concat(chunks);
}

/** Cuts the handshake carried by a one-record hello into records at the given payload offsets. */
export function reframe(hello: Buffer, cuts: number[]): Buffer {
  const payload = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const bounds = [0, ...cuts, payload.length];
  const records: Buffer[] = [];
  for (let i = 1; i < bounds.length; i++) records.push(record(payload.subarray(bounds[i - 1], bounds[i]), hello[2]));
  return Buffer.concat(records);
}

export function record(payload: Buffer, minor = 1, type = 22): Buffer {
  const header = Buffer.from([type, 3, minor, 0, 0]);
  header.writeUInt16BE(payload.length, 3);
  return Buffer.concat([header, payload]);
}

const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
export const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
export const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
export const extension = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);
export const serverNameExt = (...names: Array<[number, string | Buffer]>): Buffer =>
  extension(0, vec16(Buffer.concat(names.map(([type, name]) => Buffer.concat([u8(type), vec16(Buffer.from(name))])))));
export const alpnExt = (...names: string[]): Buffer => extension(16, vec16(Buffer.concat(names.map((n) => vec8(Buffer.from(n))))));

/** A one-record ClientHello; `extensions` undefined leaves the block out (allowed before TLS 1.3). */
export function buildHello(extensions?: Buffer[]): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7), // random
    vec8(Buffer.alloc(0)), // session id
    vec16(Buffer.from([0x13, 0x01])), // one cipher suite
    vec8(Buffer.from([0])), // null compression
    ...(extensions === undefined ? [] : [vec16(Buffer.concat(extensions))]),
  ]);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return record(Buffer.concat([header, body]));
}

/** Byte offsets of a one-record hello's fields, found independently of the parser. */
export function helloLayout(hello: Buffer): { session: number; suites: number; compression: number; extensions: number; ext: Map<number, number> } {
  const session = 5 + 4 + 2 + 32;
  const suites = session + 1 + hello[session]!;
  const compression = suites + 2 + hello.readUInt16BE(suites);
  const extensions = compression + 1 + hello[compression]!;
  const ext = new Map<number, number>(); // type → offset of the extension's own length field
  for (let p = extensions + 2; p < hello.length; p += 4 + hello.readUInt16BE(p + 2)) ext.set(hello.readUInt16BE(p), p + 2);
  return { session, suites, compression, extensions, ext };
}

/** A listening server whose accepted sockets are paired with the client sockets that made them. */
export class Loopback {
  private readonly arrived = new Map<number, Socket>();
  private readonly waiting = new Map<number, (s: Socket) => void>();
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {
    server.on('connection', (s: Socket) => {
      this.track(s);
      s.on('error', () => {}); // resets are part of the tests; assertions look at detect's result
      const port = s.remotePort!;
      const waiter = this.waiting.get(port);
      if (waiter) {
        this.waiting.delete(port);
        waiter(s);
      } else this.arrived.set(port, s);
    });
  }

  static async open(): Promise<Loopback> {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new Loopback(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async pair(): Promise<{ client: Socket; server: Socket }> {
    const client = net.connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    client.on('error', () => {});
    this.track(client);
    await once(client, 'connect');
    const port = client.localPort!;
    const early = this.arrived.get(port);
    this.arrived.delete(port);
    const server = early ?? (await new Promise<Socket>((resolve) => this.waiting.set(port, resolve)));
    return { client, server };
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  /** Closes the server and destroys what a failed test left open, so the suite cannot hang. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Resolves once `socket` has taken at least `n` bytes off the wire and its 'readable' handlers have run. */
export async function received(socket: Socket, n: number): Promise<void> {
  while (socket.bytesRead < n && !socket.destroyed) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

/** Everything the socket yields from now until its end (resuming it). */
export function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.resume();
  return new Promise((resolve) => {
    const done = (): void => resolve(Buffer.concat(chunks));
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** Marsaglia's xorshift32: enough randomness for fuzzing, the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9; // zero is xorshift's one fixed point
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}
