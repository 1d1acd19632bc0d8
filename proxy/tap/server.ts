// The tap server on the control port (4190): HTTP/2 over mutual TLS with the
// proxy's own workload certificate. Only the tap service's identity may watch
// (a tap stream shows paths and peers: it is as sensitive as the traffic);
// anyone else gets 403 with a coded reason. The server has no certificate
// until the proxy is certified: connections before that fail the handshake.
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TAP_WATCH_PATH, type TapFilter, type WatchRequest } from '../../contract/tap.js';
import type { ListenAddress } from '../config.js';
import type { Log } from '../log.js';
import { identityOf, type WorkloadCredentials } from '../transport/tls.js';
import type { TapHub, TapSink, TapWatcher } from './hub.js';

const MAX_BODY = 16 * 1024;
const NDJSON = 'application/x-ndjson';

export interface TapServerOptions {
  hub: TapHub;
  log: Log;
  anchorsPem: string;
  /** The one identity allowed to watch. */
  tapIdentity: string;
  /** A PING on each session this often (default 15 s)... */
  keepaliveMs?: number;
  /** ...and a session whose peer has not answered within this long is gone (default 10 s). */
  pingTimeoutMs?: number;
}

/**
 * A tap client that vanishes (its node lost, a partition: no FIN, no RST) would leave its
 * watcher in the hub for good, and every request after would still be matched and encoded
 * for it. Sessions are PINGed; one whose peer stops answering is destroyed, and its streams'
 * close removes their watchers.
 */
const KEEPALIVE_MS = 15_000;
const PING_TIMEOUT_MS = 10_000;

function keepAlive(session: http2.ServerHttp2Session, everyMs: number, timeoutMs: number): void {
  let deadline: NodeJS.Timeout | undefined;
  const answered = (err: Error | null): void => {
    clearTimeout(deadline);
    deadline = undefined;
    if (err !== null && !session.destroyed) session.destroy();
  };
  const timer = setInterval(() => {
    if (session.destroyed || session.closed || deadline !== undefined) return;
    deadline = setTimeout(() => session.destroy(), timeoutMs);
    deadline.unref();
    if (!session.ping(answered)) answered(null); // too many PINGs out: it has one to answer already
  }, everyMs);
  timer.unref();
  session.once('close', () => {
    clearInterval(timer);
    clearTimeout(deadline);
  });
}

export interface TapServer {
  update(cert: WorkloadCredentials): void;
  listen(addr: ListenAddress): Promise<void>;
  close(): Promise<void>;
}

type Refusal = { status: number; code: string; message: string };

function refuse(stream: http2.ServerHttp2Stream, r: Refusal): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': r.status, 'content-type': 'application/json' });
  stream.end(JSON.stringify({ code: r.code, message: r.message }));
}

/** A watch request's body, checked field by field: a bad one is refused, never half-applied. */
export function parseWatch(v: unknown): WatchRequest | Refusal {
  const bad = (message: string): Refusal => ({ status: 400, code: 'MESH_TAP_MALFORMED', message });
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('the body must be a JSON object');
  const o = v as Record<string, unknown>;
  const out: WatchRequest = {};
  if (o.maxRps !== undefined) {
    if (typeof o.maxRps !== 'number' || !(o.maxRps > 0)) return bad('maxRps must be a positive number');
    out.maxRps = o.maxRps;
  }
  if (o.filter !== undefined) {
    if (typeof o.filter !== 'object' || o.filter === null) return bad('filter must be an object');
    const f = o.filter as Record<string, unknown>;
    const filter: TapFilter = {};
    for (const k of Object.keys(f)) {
      const val = f[k];
      switch (k) {
        case 'direction':
          if (val !== 'inbound' && val !== 'outbound') return bad('filter.direction must be inbound or outbound');
          filter.direction = val;
          break;
        case 'method':
        case 'pathPrefix':
        case 'authority':
        case 'peer':
          if (typeof val !== 'string' || val === '') return bad(`filter.${k} must be a non-empty string`);
          filter[k] = val;
          break;
        case 'opaque':
          if (typeof val !== 'boolean') return bad('filter.opaque must be true or false');
          filter.opaque = val;
          break;
        default:
          return bad(`unknown filter field ${JSON.stringify(k)}`);
      }
    }
    out.filter = filter;
  }
  return out;
}

/** Lines gathered in one event-loop turn go out as one write: a node:http2 write per line costs more than the line. */
const MAX_BATCH_LINES = 4096;

class BatchedSink implements TapSink {
  watcher: TapWatcher | undefined;
  #lines: string[] = [];
  #scheduled = false;
  /** The stream said it was full: wait for 'drain'. */
  #blocked = false;

  constructor(private readonly stream: http2.ServerHttp2Stream) {
    stream.on('drain', () => {
      this.#blocked = false;
      this.watcher?.drained();
    });
  }

  write(line: string): boolean {
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return !this.#blocked && this.#lines.length < MAX_BATCH_LINES;
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const lines = this.#lines;
    this.#lines = [];
    if (lines.length === 0 || this.stream.destroyed || this.stream.closed) return;
    if (!this.stream.write(`${lines.join('\n')}\n`)) this.#blocked = true;
    // A watcher stopped by a full batch (not a full stream) may go on.
    else this.watcher?.drained();
  };
}

export function createTapServer(o: TapServerOptions): TapServer {
  let server: http2.Http2SecureServer | undefined;
  let creds: WorkloadCredentials | undefined;
  const streams = new Set<http2.ServerHttp2Stream>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const raw = new Set<Socket>();

  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    stream.on('error', () => {});
    const socket = stream.session?.socket as TLSSocket | undefined;
    const who = socket?.authorized ? identityOf(socket.getPeerCertificate()) : undefined;
    if (who !== o.tapIdentity) {
      o.log.warn('tap refused', { client: who ?? 'unverified', allowed: o.tapIdentity });
      return refuse(stream, { status: 403, code: 'MESH_TAP_FORBIDDEN', message: `tap is for ${o.tapIdentity} only; this client is ${who ?? 'not verified'}` });
    }
    if (headers[':path'] !== TAP_WATCH_PATH) return refuse(stream, { status: 404, code: 'MESH_TAP_NOT_FOUND', message: `try POST ${TAP_WATCH_PATH}` });
    if (headers[':method'] !== 'POST') return refuse(stream, { status: 405, code: 'MESH_TAP_METHOD', message: `${TAP_WATCH_PATH} takes POST` });
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) return refuse(stream, { status: 413, code: 'MESH_TAP_MALFORMED', message: `body beyond ${MAX_BODY} bytes` });
      chunks.push(c);
    });
    stream.on('end', () => {
      if (stream.headersSent) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch (e) {
        return refuse(stream, { status: 400, code: 'MESH_TAP_MALFORMED', message: `not JSON: ${(e as Error).message}` });
      }
      const req = parseWatch(body);
      if ('code' in req) return refuse(stream, req);
      stream.respond({ ':status': 200, 'content-type': NDJSON });
      stream.write('{"kind":"started"}\n');
      const sink = new BatchedSink(stream);
      const w = o.hub.watch(req.filter ?? {}, req.maxRps, sink);
      sink.watcher = w;
      streams.add(stream);
      stream.once('close', () => {
        streams.delete(stream);
        o.hub.unwatch(w);
      });
      o.log.info('tap watching', { client: who, filter: JSON.stringify(req.filter ?? {}), maxRps: req.maxRps ?? 'default' });
    });
  };

  return {
    update(cert) {
      creds = cert;
      const ctx = { key: cert.keyPem, cert: cert.chainPem, ca: o.anchorsPem };
      server?.setSecureContext({ ...ctx, minVersion: 'TLSv1.3' });
    },
    async listen(addr) {
      server = http2.createSecureServer({
        ...(creds ? { key: creds.keyPem, cert: creds.chainPem } : {}),
        ca: o.anchorsPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      });
      server.on('stream', onStream);
      // Raw connections too: one that never finishes its TLS handshake (a port probe) is no
      // session, and close() would wait for it (Node's handshake timeout is 120 s).
      server.on('connection', (socket: Socket) => {
        raw.add(socket);
        socket.once('close', () => raw.delete(socket));
      });
      server.on('session', (session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
        keepAlive(session, o.keepaliveMs ?? KEEPALIVE_MS, o.pingTimeoutMs ?? PING_TIMEOUT_MS);
      });
      const s = server;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ host: addr.host, port: addr.port, ipv6Only: false }, () => {
          s.removeListener('error', reject);
          resolve();
        });
      });
    },
    async close() {
      for (const st of streams) st.close();
      for (const session of sessions) session.destroy();
      for (const socket of raw) socket.destroy();
      if (server === undefined) return;
      const s = server;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
