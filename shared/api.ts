// The control plane's API transport, shared by every service (identity now;
// destination and tap later): HTTP/2 over TLS, JSON bodies, refusals as
// `{ code, message }` with a 4xx/5xx status. The server also speaks HTTP/1.1,
// only so that kubelet's HTTPS probes and a curl by hand reach /live and /ready.
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';

export const JSON_TYPE = 'application/json';
// Bodies here are a token, a CSR, a name: kilobytes. Anything larger is not ours.
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
// A client that has not sent its whole body in this long is gone or hostile.
const REQUEST_TIMEOUT_MS = 10_000;
const CLOSE_GRACE_MS = 5_000;

export interface ErrorBody {
  code: string;
  message: string;
}

/** An answer other than 200: its status, and the code and message of its body. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
  }
}

export const malformed = (message: string): ApiError => new ApiError(400, 'MESH_API_MALFORMED', message);

export interface RequestMeta {
  path: string;
  remote: string;
}

/** One `POST <path>` taking and returning JSON. */
export interface JsonEndpoint {
  path: string;
  maxBodyBytes?: number;
  /** Resolves to the 200 body; throws an ApiError to refuse. Anything else thrown is a 500. */
  handle(body: unknown, meta: RequestMeta): Promise<unknown>;
  /** Every non-200 answer, malformed bodies included: where a service logs its refusals. */
  failed?(error: ApiError, meta: RequestMeta, body: unknown): void;
}

/**
 * One `POST <path>` taking JSON and answering 200 `application/x-ndjson`: one
 * JSON value per line, for as long as the client listens and the server runs
 * (destination updates, tap). Refusals before the first line are ordinary
 * `{ code, message }` answers.
 */
export interface JsonStreamEndpoint {
  path: string;
  maxBodyBytes?: number;
  /**
   * Validates the request (throws an ApiError to refuse; anything else is a
   * 500), then emits lines until `signal` aborts: the client went away or the
   * server is closing. Returning does not end the stream; the abort does.
   */
  handle(body: unknown, meta: RequestMeta, emit: (msg: unknown) => void, signal: AbortSignal): void | Promise<void>;
  failed?(error: ApiError, meta: RequestMeta, body: unknown): void;
}

export const NDJSON_TYPE = 'application/x-ndjson';
// A reader this far behind is not reading: its stream is cut rather than
// letting one stuck proxy grow the controller's memory without bound.
const MAX_STREAM_BUFFER_BYTES = 16 * 1024 * 1024;

export interface ApiServerOptions {
  certPem: string;
  keyPem: string;
  endpoints: readonly JsonEndpoint[];
  streams?: readonly JsonStreamEndpoint[];
  ready(): boolean;
  /** How long a request body may take to arrive (default 10 s). */
  requestTimeoutMs?: number;
}

export interface ApiServer {
  server: http2.Http2SecureServer;
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Swaps the certificate for new connections (renewal); open ones keep theirs. */
  setCertificate(certPem: string, keyPem: string): void;
  /** Stops accepting, lets requests in flight finish (GOAWAY), then cuts what is left. */
  close(): Promise<void>;
}

type Request = http2.Http2ServerRequest;
type Response = http2.Http2ServerResponse;

function send(res: Response, status: number, type: string, body: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function sendJson(res: Response, status: number, value: unknown): void {
  send(res, status, JSON_TYPE, JSON.stringify(value));
}

function sendError(res: Response, e: ApiError): void {
  const body: ErrorBody = { code: e.code, message: e.message };
  sendJson(res, e.status, body);
}

/** The request's JSON body: JSON content type, at most `maxBytes`, parsable. */
export async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '');
  if (type.split(';')[0]!.trim().toLowerCase() !== JSON_TYPE) {
    throw new ApiError(415, 'MESH_API_CONTENT_TYPE', `content-type must be ${JSON_TYPE}, not ${JSON.stringify(type)}`);
  }
  const tooLarge = (): ApiError => new ApiError(413, 'MESH_API_TOO_LARGE', `body is larger than ${maxBytes} bytes`);
  if (Number(req.headers['content-length']) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (e) {
    throw malformed(`body is not JSON (${(e as Error).message})`);
  }
}

/** Rejects with a 408 if the body has not arrived in time; `cancel` once it has. */
function deadline(ms: number): { expired: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApiError(408, 'MESH_API_TIMEOUT', `request body not received within ${ms} ms`)), ms);
  });
  return { expired, cancel: () => clearTimeout(timer) };
}

/**
 * After answering an h2 request whose body we stopped reading: cancel the stream
 * (the RST_STREAM follows the response already queued). HTTP/1 is left to Node,
 * which discards the rest; cutting the socket with input unread would reset the
 * connection and lose the answer.
 */
function abandon(req: Request): void {
  const stream = (req as Partial<Request>).stream;
  if (!req.complete && stream !== undefined) stream.close(http2.constants.NGHTTP2_CANCEL);
}

async function serveEndpoint(endpoint: JsonEndpoint, req: Request, res: Response, meta: RequestMeta, timeoutMs: number): Promise<void> {
  let body: unknown;
  const timeout = deadline(timeoutMs);
  try {
    body = await Promise.race([readJson(req, endpoint.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES), timeout.expired]);
    timeout.cancel();
    sendJson(res, 200, await endpoint.handle(body, meta));
  } catch (e) {
    timeout.cancel();
    // The caller learns nothing of an unexpected failure; the log gets the cause.
    const error = e instanceof ApiError ? e : new ApiError(500, 'MESH_API_INTERNAL', 'internal error', { cause: e });
    endpoint.failed?.(error, meta, body);
    sendError(res, error);
    abandon(req);
  }
}

/** Bytes written but not yet taken by the peer (HTTP/2: the stream's buffer; HTTP/1: the response's). */
function buffered(res: Response): number {
  const r = res as unknown as { stream?: { writableLength: number }; writableLength?: number };
  return r.stream?.writableLength ?? r.writableLength ?? 0;
}

async function serveStream(endpoint: JsonStreamEndpoint, req: Request, res: Response, meta: RequestMeta, timeoutMs: number, open: Set<AbortController>): Promise<void> {
  let body: unknown;
  const timeout = deadline(timeoutMs);
  const controller = new AbortController();
  const stop = (): void => {
    if (controller.signal.aborted) return;
    open.delete(controller);
    controller.abort();
  };
  res.once('close', stop);
  const start = (): void => {
    if (res.headersSent || controller.signal.aborted) return;
    res.writeHead(200, { 'content-type': NDJSON_TYPE, 'cache-control': 'no-store' });
    // Flush the head now: a client waits for it before it knows the stream is accepted.
    (res as unknown as { flushHeaders?: () => void }).flushHeaders?.();
  };
  const emit = (msg: unknown): void => {
    if (controller.signal.aborted) return;
    start();
    res.write(`${JSON.stringify(msg)}\n`);
    if (buffered(res) > MAX_STREAM_BUFFER_BYTES) {
      stop();
      res.destroy();
    }
  };
  try {
    body = await Promise.race([readJson(req, endpoint.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES), timeout.expired]);
    timeout.cancel();
    if (res.closed || req.destroyed) return;
    open.add(controller);
    // The server closing ends the stream with a clean end-of-body, so the client tells it from a crash only by its own rules.
    controller.signal.addEventListener('abort', () => {
      if (!res.writableEnded && !res.destroyed) res.end();
    });
    await endpoint.handle(body, meta, emit, controller.signal);
    start();
  } catch (e) {
    timeout.cancel();
    const error = e instanceof ApiError ? e : new ApiError(500, 'MESH_API_INTERNAL', 'internal error', { cause: e });
    endpoint.failed?.(error, meta, body);
    if (res.headersSent) {
      // Lines already went out: there is no status left to say it with; end the stream and let the client re-ask.
      stop();
      return;
    }
    sendError(res, error);
    stop();
    abandon(req);
  }
}

function route(options: ApiServerOptions, openStreams: Set<AbortController>): (req: Request, res: Response) => void {
  const endpoints = new Map(options.endpoints.map((e) => [e.path, e]));
  const streams = new Map((options.streams ?? []).map((e) => [e.path, e]));
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const meta: RequestMeta = { path, remote: req.socket?.remoteAddress ?? 'unknown' };
    if (path === '/live') return send(res, 200, 'text/plain', 'live\n');
    if (path === '/ready') return options.ready() ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', 'not ready\n');
    const stream = streams.get(path);
    const endpoint = endpoints.get(path);
    if (stream !== undefined && req.method === 'POST') {
      void serveStream(stream, req, res, meta, options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, openStreams);
      return;
    }
    if (endpoint === undefined && stream === undefined) return sendError(res, new ApiError(404, 'MESH_API_NOT_FOUND', `no endpoint ${path}`));
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return sendError(res, new ApiError(405, 'MESH_API_METHOD', `${path} takes POST, not ${req.method}`));
    }
    if (endpoint !== undefined) void serveEndpoint(endpoint, req, res, meta, options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
  };
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  const server = http2.createSecureServer({ cert: options.certPem, key: options.keyPem, allowHTTP1: true });
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // Streams never finish on their own: close() ends them, or a graceful close would wait out the grace period.
  const openStreams = new Set<AbortController>();
  server.on('request', route(options, openStreams));
  return {
    server,
    async listen(host, port) {
      server.listen(port, host);
      await once(server, 'listening');
      return server.address() as AddressInfo;
    },
    setCertificate(certPem, keyPem) {
      server.setSecureContext({ cert: certPem, key: keyPem });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const stream of [...openStreams]) stream.abort();
      openStreams.clear();
      for (const session of sessions) session.close();
      const grace = setTimeout(() => sockets.forEach((s) => s.destroy()), CLOSE_GRACE_MS);
      grace.unref();
      await closed;
      clearTimeout(grace);
    },
  };
}

// ── Client ──────────────────────────────────────────────────────────────────

export type ApiClientErrorCode =
  /** No answer: refused, reset, timed out, not TLS. Worth retrying. */
  | 'MESH_API_UNREACHABLE'
  /** The server's certificate does not verify as the expected name against the trust anchor. */
  | 'MESH_API_SERVER_UNTRUSTED'
  /** A 4xx/5xx with a `{ code, message }` body; `serverCode` says why. */
  | 'MESH_API_REFUSED'
  /** An answer that is not what the API promises. */
  | 'MESH_API_BAD_RESPONSE';

export class ApiClientError extends Error {
  constructor(
    readonly code: ApiClientErrorCode,
    message: string,
    readonly status?: number,
    readonly serverCode?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiClientError';
  }
}

export interface PostJsonOptions {
  /** `https://host:port` */
  url: string;
  path: string;
  body: unknown;
  /** PEM bundle the server's certificate must chain to; the system roots are not used. */
  trustAnchorPem: string;
  /** The name the server's certificate must carry (the URL's host may be an address). */
  serverName: string;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

// OpenSSL's verify results (UNABLE_TO_GET_ISSUER_CERT_LOCALLY, CERT_HAS_EXPIRED,
// SELF_SIGNED_CERT_IN_CHAIN, …) and Node's name check (ERR_TLS_CERT_ALTNAME_INVALID).
const UNTRUSTED = /CERT|ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY/;

export function transportError(e: NodeJS.ErrnoException, o: { url: string; serverName: string }): ApiClientError {
  const code = e.code ?? '';
  if (UNTRUSTED.test(code)) {
    return new ApiClientError(
      'MESH_API_SERVER_UNTRUSTED',
      `${o.url}: the server's certificate does not verify as ${o.serverName} against the trust anchor (${code}: ${e.message})`,
      undefined,
      undefined,
      { cause: e },
    );
  }
  return new ApiClientError('MESH_API_UNREACHABLE', `${o.url}: ${e.message}${code === '' ? '' : ` (${code})`}`, undefined, undefined, { cause: e });
}

function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === 'object' && v !== null && typeof (v as ErrorBody).code === 'string' && typeof (v as ErrorBody).message === 'string';
}

function interpret(o: PostJsonOptions, status: number, type: string, raw: string): unknown {
  let parsed: unknown;
  try {
    parsed = type.split(';')[0]!.trim() === JSON_TYPE ? (JSON.parse(raw) as unknown) : undefined;
  } catch {
    parsed = undefined;
  }
  if (status === 200) {
    if (parsed === undefined) throw new ApiClientError('MESH_API_BAD_RESPONSE', `${o.url}${o.path} answered 200 without a JSON body`, status);
    return parsed;
  }
  if (isErrorBody(parsed)) {
    throw new ApiClientError('MESH_API_REFUSED', `${o.url}${o.path} refused (${status} ${parsed.code}): ${parsed.message}`, status, parsed.code);
  }
  throw new ApiClientError('MESH_API_BAD_RESPONSE', `${o.url}${o.path} answered ${status} without a { code, message } body`, status);
}

/** One request on its own HTTP/2 session, closed afterwards: control-plane calls are rare. */
export function postJson(o: PostJsonOptions): Promise<unknown> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxBytes = o.maxResponseBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    let settled = false;
    const session = http2.connect(o.url, { ca: o.trustAnchorPem, servername: o.serverName, minVersion: 'TLSv1.3' });
    const finish = (error: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined) session.close();
      else session.destroy();
      if (error === undefined) resolve(value);
      else reject(error);
    };
    const timer = setTimeout(() => finish(new ApiClientError('MESH_API_UNREACHABLE', `${o.url}: no answer within ${timeoutMs} ms`)), timeoutMs);
    session.on('error', (e: NodeJS.ErrnoException) => finish(transportError(e, o)));

    const payload = Buffer.from(JSON.stringify(o.body));
    const req = session.request({ ':method': 'POST', ':path': o.path, 'content-type': JSON_TYPE, 'content-length': payload.length, accept: JSON_TYPE });
    // A failed handshake cancels the stream first and reports its cause on the
    // session a moment later: give the session's (truer) error the first word.
    req.on('error', (e: NodeJS.ErrnoException) => setImmediate(() => finish(transportError(e, o))));
    let status = 0;
    let type = '';
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('response', (headers) => {
      status = Number(headers[':status']);
      type = String(headers['content-type'] ?? '');
    });
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) finish(new ApiClientError('MESH_API_BAD_RESPONSE', `${o.url}${o.path}: response larger than ${maxBytes} bytes`, status));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        finish(undefined, interpret(o, status, type, Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        finish(e as Error);
      }
    });
    req.end(payload);
  });
}
