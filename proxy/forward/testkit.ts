// In-process topology for the forwarder's tests, all on 127.0.0.1 port 0:
//   client ──▶ client proxy (outbound HttpStage) ──▶ server proxy (inbound HttpStage) ──▶ backend
// The meshed hop is plain TCP: dialMeshed is the only thing swapped out, so
// the real Upstreams (pending dispatcher, h2 connection sharing, h1 pools)
// carries every request. The server proxy's connections carry the clientId a
// verified mTLS peer would have.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import { Upstreams, type H1PoolLike } from '../connect/upstreams.js';
import { formatAddr, type ConnContext } from '../context.js';
import { Log } from '../log.js';
import { ProxyMetrics } from '../metrics.js';
import { dialTcp } from '../opaque.js';
import type { Direction } from '../target.js';
import type { SessionProtocol } from '../transport/header.js';
import { Forwarder } from './forwarder.js';
import { HttpStage, type DiscoveryLookup } from './http.js';

export const WEB_ID = 'web.default.serviceaccount.identity.cluster.local';
export const API_ID = 'api.default.serviceaccount.identity.cluster.local';

const CONNECT_TIMEOUT_MS = 2000;
const quiet = new Log('error', () => {});

export function addr(port: number): SocketAddress {
  return { address: '127.0.0.1', port, family: 4 };
}

export function sha(...parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Makes the HTTP/1 pool for one endpoint (the h1 codec's H1Pool). */
export type PoolFactory = (dial: () => Promise<net.Socket>, key: string) => H1PoolLike;

/** The real connector, with mTLS to a meshed peer replaced by plain TCP; records what it was asked to dial. */
export class PlainMeshConnector extends Upstreams {
  readonly meshedDials: { target: string; peer: string; protocol: SessionProtocol }[] = [];

  constructor(h1Pool: PoolFactory) {
    super({ connectTimeoutMs: CONNECT_TIMEOUT_MS, log: quiet, h1Pool });
  }

  override dialMeshed(target: SocketAddress, peer: string, protocol: SessionProtocol): Promise<net.Socket> {
    this.meshedDials.push({ target: formatAddr(target), peer, protocol });
    return dialTcp(target, CONNECT_TIMEOUT_MS);
  }
}

export interface ProxyOptions {
  direction: Direction;
  /** What the accepted connections speak: the test knows, no detection. */
  protocol: 'h1' | 'h2';
  /** The next hop: the server proxy (meshed) or the backend. */
  target: SocketAddress;
  /** Outbound to a meshed destination: requests go as h2 to its proxy. */
  peerIdentity?: string;
  /** Inbound from a verified peer proxy. */
  clientId?: string;
  h1Pool: PoolFactory;
  /** Outbound: discovery as the test wants it, given the proxy's connector (endpoints dial through it). */
  discovery?: (connector: Upstreams) => DiscoveryLookup;
}

export interface ProxyNode {
  port: number;
  metrics: ProxyMetrics;
  /** The HTTP stage the connections are served by (a shutdown drains it). */
  stage: HttpStage;
  connector: PlainMeshConnector;
  /** Every connection's context, in accept order. */
  contexts: ConnContext[];
  close(): Promise<void>;
}

/** One proxy stage listening on loopback; each connection gets a ConnContext and the codec the test names. */
export async function startProxy(o: ProxyOptions): Promise<ProxyNode> {
  const metrics = new ProxyMetrics(false);
  const connector = new PlainMeshConnector(o.h1Pool);
  const stage = new HttpStage({
    log: quiet,
    metrics,
    forwarder: new Forwarder({ log: quiet, metrics }),
    upstreams: connector,
    ...(o.discovery ? { discovery: o.discovery(connector) } : {}),
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    headTimeoutMs: 5000,
    idleTimeoutMs: 10_000,
  });
  const targetAddr = formatAddr(o.target);
  const contexts: ConnContext[] = [];
  const sockets = new Set<net.Socket>();
  // allowHalfOpen as the real listener: a client's FIN must not close our side.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    const ctx: ConnContext = {
      direction: o.direction,
      target: o.target,
      targetAddr,
      src: `${socket.remoteAddress}:${socket.remotePort}`,
      metrics: metrics.connection({
        direction: o.direction,
        target_addr: targetAddr,
        ...(o.clientId !== undefined ? { tls: 'true', client_id: o.clientId } : o.peerIdentity !== undefined ? { tls: 'true', server_id: o.peerIdentity } : { tls: 'no_identity', no_tls_reason: 'loopback' }),
      }),
      ...(o.peerIdentity !== undefined ? { peerIdentity: o.peerIdentity } : {}),
      ...(o.clientId !== undefined ? { clientId: o.clientId } : {}),
    };
    contexts.push(ctx);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      ctx.metrics.close(socket.bytesRead, socket.bytesWritten, undefined);
    });
    if (o.protocol === 'h1') stage.serveH1(socket, ctx);
    else stage.serveH2(socket, ctx);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    metrics,
    stage,
    connector,
    contexts,
    async close() {
      connector.drain();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Client proxy (outbound, meshed toward the server proxy) and server proxy (inbound, h2 from its peer). */
export interface MeshPair {
  client: ProxyNode;
  server: ProxyNode;
  close(): Promise<void>;
}

export async function startMesh(clientProtocol: 'h1' | 'h2', backend: SocketAddress, h1Pool: PoolFactory): Promise<MeshPair> {
  const server = await startProxy({ direction: 'inbound', protocol: 'h2', target: backend, clientId: WEB_ID, h1Pool });
  const client = await startProxy({ direction: 'outbound', protocol: clientProtocol, target: addr(server.port), peerIdentity: API_ID, h1Pool });
  return {
    client,
    server,
    async close() {
      await client.close();
      await server.close();
    },
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A raw TCP client: writes `bytes`, resolves with everything read until `until` matches or the peer closes. */
export function rawExchange(port: number, bytes: string | Buffer, until?: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(text);
    };
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (until?.(text)) finish();
    });
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', (e) => (done ? undefined : reject(e)));
    s.write(bytes);
  });
}

/** Lines of a Prometheus exposition for one metric, as label maps with values. */
export function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(close + 1).trim()) });
  }
  return out;
}

/** Waits for cond() on real sockets; the patience is generous, the poll fine (no fixed sleeps as synchronisation). */
export async function eventually(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
