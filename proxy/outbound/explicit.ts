// Explicit proxy mode: the outbound listener as an HTTP/1 forward proxy for
// apps that set HTTP_PROXY / HTTPS_PROXY, so a workload joins the mesh with
// no interception (no mesh-init): one hop, chosen by the app. A connection
// whose original destination is the proxy itself lands here.
//   absolute-form request ("GET http://host:port/p") → the destination from
//     the URI, then the same HTTP stage as intercepted traffic (metrics, h2
//     over mTLS to a meshed destination, pooling)
//   CONNECT host:port → a tunnel: to a meshed destination, mTLS to its proxy
//     as an opaque stream; else plain TCP; "200" once the upstream is up
//   anything else → 400 (405 for https:// URIs: the proxy does not originate
//     TLS, CONNECT does) with the mesh-proxy-error header
// The destination is the one the first request names: later requests on the
// same client connection go there too (clients keep a connection per host).
import { Buffer } from 'node:buffer';
import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import type { SocketAddress } from '../../native/index.js';
import type { Connections } from '../connections.js';
import type { ProxyErrorCode } from '../errors.js';
import { matchRequestLine } from '../detect/http.js';
import type { HttpStage } from '../forward/http.js';
import type { Log } from '../log.js';
import type { ProxyMetrics, TlsLabels } from '../metrics.js';
import { resetAndDestroy } from '../transport/tls.js';

export interface ExplicitDeps {
  log: Log;
  metrics: ProxyMetrics;
  conns: Connections;
  http: HttpStage;
  /** The identity a destination's proxy must prove: the outbound stack's own lookup (the override list). */
  peerOf(target: SocketAddress): string | undefined;
  /** With discovery: the identity of the one meshed endpoint at exactly `target` (a pod), after a bounded wait. */
  discoveredPeer?(target: SocketAddress): Promise<string | undefined>;
  tlsLabels(peer: string | undefined): TlsLabels;
  headTimeoutMs: number;
  maxHeadBytes: number;
  /** The outbound listener's port: a request naming it on loopback would loop through this proxy. */
  ownPort: number;
  connectTimeoutMs: number;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]\r\n/;
const AUTHORITY = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:@/?#[\]\s]+)):(\d{1,5})$/;
const ABSOLUTE = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/?#]*@)?(\[[0-9A-Fa-f:.]+\]|[^:/?#]+)(?::(\d{1,5}))?(?:[/?#]|$)/i;

type Request = { kind: 'connect' | 'forward'; host: string; port: number } | { kind: 'refuse'; status: 400 | 405; code: ProxyErrorCode; why: string };

/** Judges a complete head: where it goes, or why not. Pure. */
export function explicitRequest(head: string): Request {
  const line = REQUEST_LINE.exec(head);
  if (!line) return { kind: 'refuse', status: 400, code: 'MESH_EXPLICIT_BAD_REQUEST', why: 'not an HTTP/1 request' };
  const [, method, target] = line as unknown as [string, string, string];
  if (method === 'CONNECT') {
    const m = AUTHORITY.exec(target);
    const port = Number(m?.[3]);
    if (!m || !(port >= 1 && port <= 65535)) return { kind: 'refuse', status: 400, code: 'MESH_EXPLICIT_BAD_REQUEST', why: `CONNECT needs host:port, got ${target}` };
    return { kind: 'connect', host: m[1] ?? m[2]!, port };
  }
  const m = ABSOLUTE.exec(target);
  if (!m) return { kind: 'refuse', status: 400, code: 'MESH_EXPLICIT_BAD_REQUEST', why: 'a request to the proxy itself must name its destination (absolute-form URI or CONNECT)' };
  if (m[1]!.toLowerCase() !== 'http') return { kind: 'refuse', status: 405, code: 'MESH_EXPLICIT_METHOD', why: `${m[1]}:// is not forwarded; use CONNECT` };
  const port = m[3] === undefined ? 80 : Number(m[3]);
  if (!(port >= 1 && port <= 65535)) return { kind: 'refuse', status: 400, code: 'MESH_EXPLICIT_BAD_REQUEST', why: `bad port in ${target}` };
  return { kind: 'forward', host: m[2]!.replace(/^\[(.*)\]$/, '$1'), port };
}

async function resolve(host: string, port: number): Promise<SocketAddress> {
  const family = isIP(host);
  if (family !== 0) return { address: host, port, family: family as 4 | 6 };
  const r = await lookup(host);
  return { address: r.address, port, family: r.family === 6 ? 6 : 4 };
}

function answer(socket: Socket, status: number, code: string, why: string): void {
  const reason = status === 400 ? 'Bad Request' : status === 405 ? 'Method Not Allowed' : status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
  const body = `${why}\n`;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nmesh-proxy-error: ${code}\r\nconnection: close\r\n\r\n${body}`);
}

/** Reads one request head off `socket`; resolves with every byte read (head and beyond), or undefined. */
function readHead(socket: Socket, maxBytes: number, timeoutMs: number): Promise<{ bytes: Buffer; headLength: number } | undefined> {
  return new Promise((done) => {
    let held: Buffer = Buffer.alloc(0);
    const finish = (r: { bytes: Buffer; headLength: number } | undefined): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.pause();
      // Put back at once: a FIN that comes while the target is resolved or dialled would
      // emit 'end' on an empty buffer, and an unshift after 'end' destroys the socket
      // (the request was lost). Bytes held in the buffer keep 'end' behind them.
      if (r !== undefined && !socket.destroyed) socket.unshift(r.bytes);
      done(r);
    };
    const onData = (chunk: Buffer): void => {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      // Not the start of a request line (raw bytes, TLS): refused now, not at the head timeout.
      if (matchRequestLine(held) === 'no') return finish(undefined);
      const end = held.indexOf(HEAD_END);
      if (end >= 0) return finish({ bytes: held, headLength: end + HEAD_END.length });
      if (held.length >= maxBytes) finish(undefined);
    };
    const onClose = (): void => finish(undefined);
    const timer = setTimeout(finish, timeoutMs, undefined);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

export function explicitProxy(d: ExplicitDeps): (socket: Socket, src: string) => void {
  const { log, metrics, conns } = d;
  const refuse = (socket: Socket, src: string, status: number, code: ProxyErrorCode, why: string): void => {
    metrics.protocolError('outbound', code);
    log.info('explicit proxy request refused', { src, status, code, reason: why });
    answer(socket, status, code, why);
  };

  return (socket: Socket, src: string): void => {
    readHead(socket, d.maxHeadBytes, d.headTimeoutMs).then(async (got) => {
      if (got === undefined) {
        if (!socket.destroyed) refuse(socket, src, 400, 'MESH_EXPLICIT_BAD_REQUEST', 'no HTTP/1 request head (in time, within the size limit)');
        return;
      }
      const req = explicitRequest(got.bytes.toString('latin1', 0, got.headLength));
      if (req.kind === 'refuse') return refuse(socket, src, req.status, req.code, req.why);
      let target: SocketAddress;
      try {
        target = await resolve(req.host, req.port);
      } catch (e) {
        metrics.protocolError('outbound', 'MESH_EXPLICIT_RESOLVE');
        return answer(socket, 502, 'MESH_EXPLICIT_RESOLVE', `${req.host}: ${(e as Error).message}`);
      }
      if (socket.destroyed) return;
      if (target.port === d.ownPort && (target.address === '::1' || target.address.startsWith('127.'))) {
        return refuse(socket, src, 400, 'MESH_EXPLICIT_BAD_REQUEST', 'the destination is this proxy itself');
      }
      const discovered = d.peerOf(target) === undefined && d.discoveredPeer !== undefined ? await d.discoveredPeer(target) : undefined;
      if (socket.destroyed) return;
      const a = conns.adopt(socket, 'outbound', target, src, d.tlsLabels(undefined), discovered === undefined ? d.peerOf : () => discovered);
      const ctx = conns.begin(a, d.tlsLabels(a.peer));
      if (log.enabled('debug')) log.debug('explicit proxy', { src, dst: a.targetAddr, method: req.kind, ...(a.peer ? { server_id: a.peer } : {}) });
      // The HTTP stage reads the request again from its first byte (readHead put it back).
      if (req.kind === 'forward') return conns.serve(socket, socket, ctx, 'http1', d.http, a.at);
      // A tunnel: whatever came after the CONNECT head belongs to it; the head itself is ours.
      socket.read(got.headLength);
      conns.dial(target, a.peer, 'opaque', d.connectTimeoutMs).then(
        (up) => {
          if (socket.destroyed) {
            up.destroy();
            return conns.closed(socket, ctx, 'connect', 'MESH_CLIENT_RESET');
          }
          socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
          conns.opaque(socket, socket, ctx, 'connect', d.connectTimeoutMs, Promise.resolve(up));
        },
        (e: { code?: string; message?: string }) => {
          const code = e.code ?? 'MESH_CONNECT_FAILED';
          log.info('forward failed', { direction: 'outbound', src, dst: a.targetAddr, code, reason: e.message });
          if (socket.destroyed) return conns.closed(socket, ctx, 'connect', code);
          answer(socket, code === 'MESH_CONNECT_TIMEOUT' ? 504 : 502, code, e.message ?? code);
          socket.once('close', () => conns.closed(socket, ctx, 'connect', code));
          socket.setTimeout(d.connectTimeoutMs, () => resetAndDestroy(socket));
        },
      );
    });
  };
}
