// The client side of the control plane's streaming endpoints (JsonStreamEndpoint
// in api.ts): many long-lived ndjson streams over one HTTP/2 session. It only
// reports; whether and when to ask again is the caller's decision (a proxy
// backs off and keeps its last answer), so there is no reconnect logic here.
import http2 from 'node:http2';
import { ApiClientError, JSON_TYPE, NDJSON_TYPE, transportError } from './api.js';

export interface JsonStreamHandlers {
  onMessage(msg: unknown): void;
  /** once; undefined error when close() ended it */
  onEnd(error: ApiClientError | undefined): void;
}

export interface JsonStreamClientOptions {
  /** `https://host:port` */
  url: string;
  /** PEM bundle the server's certificate must chain to; the system roots are not used. */
  trustAnchorPem: string;
  /** The name the server's certificate must carry. */
  serverName: string;
  /** How long the TLS + HTTP/2 handshake may take (default 5 s). */
  connectTimeoutMs?: number;
  /** A client certificate (chain) and key, for servers that ask who is calling (a proxy's tap port). */
  clientCertPem?: string;
  clientKeyPem?: string;
}

// A snapshot of hundreds of endpoints is tens of kilobytes; a line past this is
// not ours, and buffering it would let a broken server grow a proxy's memory.
const MAX_LINE_BYTES = 4 * 1024 * 1024;
// A server that vanished without a FIN (host down, partition) is noticed by an
// unanswered PING rather than by the next update that never comes.
const PING_INTERVAL_MS = 10_000;
const PING_TIMEOUT_MS = 5_000;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

interface Session {
  h2: http2.ClientHttp2Session;
  /** The session's own failure, truer than the cancelled streams' (see postJson). */
  error?: ApiClientError;
}

export class JsonStreamClient {
  private session: Session | undefined;
  private readonly ends = new Set<() => void>();

  constructor(private readonly o: JsonStreamClientOptions) {}

  /** One stream on a shared HTTP/2 session (made on first use, re-made after loss). */
  open(path: string, body: unknown, h: JsonStreamHandlers): { close(): void } {
    const s = this.connect();
    const o = this.o;
    let ended = false;
    const end = (error: ApiClientError | undefined): void => {
      if (ended) return;
      ended = true;
      this.ends.delete(closeOne);
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      h.onEnd(error);
    };
    const closeOne = (): void => end(undefined);
    this.ends.add(closeOne);
    const unreachable = (why: string): ApiClientError => new ApiClientError('MESH_API_UNREACHABLE', `${o.url}${path}: ${why}`);
    const bad = (why: string, status?: number): ApiClientError => new ApiClientError('MESH_API_BAD_RESPONSE', `${o.url}${path}: ${why}`, status);

    const payload = Buffer.from(JSON.stringify(body));
    const req = s.h2.request({ ':method': 'POST', ':path': path, 'content-type': JSON_TYPE, 'content-length': payload.length, accept: NDJSON_TYPE });
    let status = 0;
    let streaming = false;
    let pending = '';
    const errorBody: Buffer[] = [];
    let errorBytes = 0;
    // Node emits 'response' on a later tick than the frame that carried it, and a busy client can
    // see the stream's first 'data' first: what comes before the head is held, not judged without
    // a status (seen in the limits suite: ~1% of a proxy's first answers lost that way under load,
    // their requests sent in plaintext to the original destination until the next update).
    let early: string[] | undefined = [];
    req.setEncoding('utf8');
    const consume = (chunk: string): void => {
      if (ended) return;
      if (!streaming) {
        errorBytes += Buffer.byteLength(chunk);
        if (errorBytes <= MAX_ERROR_BODY_BYTES) errorBody.push(Buffer.from(chunk));
        return;
      }
      // Only the new chunk is searched for line ends: a long line arriving in
      // many chunks costs its length once, not once per chunk.
      let from = 0;
      let nl: number;
      while (!ended && (nl = chunk.indexOf('\n', from)) >= 0) {
        const line = pending + chunk.slice(from, nl);
        pending = '';
        from = nl + 1;
        if (line.trim() === '') continue;
        let msg: unknown;
        try {
          msg = JSON.parse(line) as unknown;
        } catch (e) {
          return end(bad(`a line that is not JSON (${(e as Error).message})`, status));
        }
        h.onMessage(msg);
      }
      if (ended) return;
      pending += chunk.slice(from);
      // Counted in UTF-16 units, not bytes: cheap, and the same order as the limit meant.
      if (pending.length > MAX_LINE_BYTES) end(bad(`a line longer than ${MAX_LINE_BYTES} bytes`, status));
    };
    let bodyDone = false;
    const finishBody = (): void => {
      if (streaming) return end(unreachable('the server ended the stream'));
      end(refusal(`${o.url}${path}`, status, Buffer.concat(errorBody).toString('utf8')));
    };
    req.on('response', (headers) => {
      status = Number(headers[':status']);
      const type = String(headers['content-type'] ?? '').split(';')[0]!.trim();
      const held = early!;
      early = undefined;
      if (status === 200 && type !== NDJSON_TYPE) return end(bad(`answered 200 with ${JSON.stringify(type)}, not ${NDJSON_TYPE}`, status));
      streaming = status === 200;
      for (const chunk of held) consume(chunk);
      if (bodyDone) finishBody();
    });
    req.on('data', (chunk: string) => {
      if (early !== undefined) early.push(chunk);
      else consume(chunk);
    });
    // Judged once the head is in, for the same reason as the data.
    req.on('end', () => {
      bodyDone = true;
      if (early === undefined) finishBody();
    });
    req.on('error', (e: NodeJS.ErrnoException) => setImmediate(() => end(s.error ?? transportError(e, o))));
    req.on('close', () => setImmediate(() => end(s.error ?? unreachable(`stream closed (${streamCloseReason(req.rstCode)})`))));
    req.end(payload);
    return { close: closeOne };
  }

  /**
   * Opens the session now rather than at the first stream, so the first
   * stream costs one round trip, not a TLS handshake as well (a proxy's first
   * lookup waited ~20 ms for it). A failure here is only remembered: the
   * first stream opened later tries again and reports it.
   */
  preconnect(): void {
    this.connect();
  }

  /** Ends every stream (onEnd(undefined)) and the session. */
  close(): void {
    for (const end of [...this.ends]) end();
    const s = this.session;
    this.session = undefined;
    s?.h2.close();
  }

  private connect(): Session {
    if (this.session !== undefined && !this.session.h2.closed && !this.session.h2.destroyed) return this.session;
    const o = this.o;
    const client = o.clientCertPem !== undefined && o.clientKeyPem !== undefined ? { cert: o.clientCertPem, key: o.clientKeyPem } : {};
    const h2 = http2.connect(o.url, { ca: o.trustAnchorPem, servername: o.serverName, minVersion: 'TLSv1.3', ...client });
    const s: Session = { h2 };
    this.session = s;
    const fail = (error: ApiClientError): void => {
      s.error ??= error;
      h2.destroy();
    };
    const connectTimer = setTimeout(() => fail(new ApiClientError('MESH_API_UNREACHABLE', `${o.url}: not connected within ${o.connectTimeoutMs ?? 5000} ms`)), o.connectTimeoutMs ?? 5000);
    connectTimer.unref();
    h2.once('connect', () => clearTimeout(connectTimer));
    h2.on('error', (e: NodeJS.ErrnoException) => {
      s.error ??= transportError(e, o);
    });
    // A server going away (GOAWAY) still finishes its streams; new ones go to a new session.
    h2.on('goaway', () => {
      if (this.session === s) this.session = undefined;
    });
    const ping = setInterval(() => {
      if (h2.destroyed || h2.closed || !h2.socket) return;
      const timer = setTimeout(() => fail(new ApiClientError('MESH_API_UNREACHABLE', `${o.url}: no PING answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
      timer.unref();
      h2.ping((err) => {
        clearTimeout(timer);
        if (err !== null && !h2.destroyed) fail(new ApiClientError('MESH_API_UNREACHABLE', `${o.url}: PING failed (${err.message})`));
      });
    }, PING_INTERVAL_MS);
    ping.unref();
    h2.once('close', () => {
      clearTimeout(connectTimer);
      clearInterval(ping);
      if (this.session === s) this.session = undefined;
    });
    return s;
  }
}

function streamCloseReason(rstCode: number | undefined): string {
  if (rstCode === undefined) return 'session lost';
  return rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'NO_ERROR' : `RST_STREAM ${rstCode}`;
}

function refusal(where: string, status: number, raw: string): ApiClientError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw) as unknown;
  } catch {
    parsed = undefined;
  }
  const p = parsed as { code?: unknown; message?: unknown } | undefined;
  if (typeof p?.code === 'string' && typeof p.message === 'string') {
    return new ApiClientError('MESH_API_REFUSED', `${where} refused (${status} ${p.code}): ${p.message}`, status, p.code);
  }
  return new ApiClientError('MESH_API_BAD_RESPONSE', `${where} answered ${status} without a { code, message } body`, status);
}
