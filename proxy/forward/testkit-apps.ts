// The applications around the proxies in the forwarder's tests: node:http and
// node:http2 backends with scripted paths, a raw HTTP/1 backend that parses
// requests itself, and clients that report what a real client would see
// (complete or cut bodies, RST codes, raw header lists).
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { sha } from './testkit.js';

export const MB = 1 << 20;
export const BIG = randomBytes(5 * MB);
export const BIG_SHA = sha(BIG);
// ---- node:http2 backend and client ----

export interface H2Seen {
  path: string;
  headers: http2.IncomingHttpHeaders;
  /** RST_STREAM code the backend's stream closed with (0 when it ended cleanly). */
  closed: Promise<number>;
}

/**
 * An h2c backend. Paths: /echo (body back, its sha256 in a trailer), /trailers
 * (a body then trailers), /grpc-error (trailers-only: HEADERS with END_STREAM
 * and grpc-status), /status/N, /download (5 MB), /hang (a chunk, then nothing),
 * /die (a chunk, then the connection destroyed).
 */
export async function h2Backend(): Promise<{ port: number; seen: H2Seen[]; close(): Promise<void> }> {
  const seen: H2Seen[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const rawSockets = new Set<net.Socket>();
  server.on('connection', (raw: net.Socket) => {
    rawSockets.add(raw);
    raw.on('close', () => rawSockets.delete(raw));
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    seen.push({ path, headers, closed: new Promise((r) => stream.on('close', () => r(stream.rstCode ?? 0))) });
    stream.on('error', () => {});
    if (path === '/echo') {
      const h = createHash('sha256');
      stream.on('data', (c: Buffer) => h.update(c));
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-request-sha': h.digest('hex') }));
      stream.pipe(stream);
    } else if (path === '/trailers') {
      stream.respond({ ':status': 200, 'x-head': 'h' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-checksum': 'abc' }));
      stream.end('body before trailers');
    } else if (path === '/grpc-error') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'unavailable' }, { endStream: true });
    } else if (path.startsWith('/status/')) {
      stream.respond({ ':status': Number(path.slice(8)) });
      stream.end('s');
    } else if (path === '/download') {
      stream.respond({ ':status': 200, 'content-length': String(BIG.length) });
      stream.end(BIG);
    } else if (path === '/hang') {
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(1024, 1));
    } else if (path === '/die') {
      stream.respond({ ':status': 200 });
      // The raw socket: node:http2 refuses destroy() through its session's socket proxy.
      stream.write(Buffer.alloc(32 * 1024, 2), () => {
        for (const raw of rawSockets) raw.destroy();
      });
    } else {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export interface H2Result {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** True when the stream ended cleanly ('end'), false when it was reset. */
  ended: boolean;
  /** node:http2 raised 'error' on the stream: what most clients act on. */
  errored: boolean;
  rstCode: number;
}

export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Result> {
  return new Promise((resolve) => {
    const req = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let ended = false;
    let errored = false;
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (ended = true));
    req.on('error', () => (errored = true));
    req.on('close', () => resolve({ headers: head, body: Buffer.concat(chunks), trailers, ended, errored, rstCode: req.rstCode ?? 0 }));
    if (body !== undefined) req.end(body);
  });
}

export function h2Connect(port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  return s;
}

// ---- node:http backend and client ----

export interface H1Seen {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  body: Buffer;
  /** Resolves when the backend's response closed; `finished` false when it was cut before its end. */
  closed: Promise<{ finished: boolean; at: number }>;
}

/**
 * An HTTP/1 backend. Paths: /fine (299 "Fine Thanks", headers in a chosen case
 * and order), /trailers (chunked with trailers), /upload (sha256 of the body),
 * /download (5 MB chunked), /big20 (20 MB, written with backpressure), /hang
 * (a chunk, then nothing), /die (a chunk, then the socket destroyed),
 * /status/N, /hop (hop-by-hop fields in the response), anything else echoes the
 * request as JSON. Expect: 100-continue is answered 100 by the backend itself.
 */
export async function h1Backend(): Promise<{ port: number; seen: H1Seen[]; connections: number; close(): Promise<void> }> {
  const seen: H1Seen[] = [];
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.sendDate = false;
    const chunks: Buffer[] = [];
    const entry: H1Seen = {
      method: req.method!,
      url: req.url!,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      closed: new Promise((r) => res.on('close', () => r({ finished: res.writableFinished, at: performance.now() }))),
    };
    seen.push(entry);
    req.on('data', (c: Buffer) => chunks.push(c));
    const path = req.url!.replace(/^https?:\/\/[^/]*/, '');
    if (path === '/hang') {
      res.writeHead(200);
      res.write(Buffer.alloc(1024, 1));
      return;
    }
    if (path === '/die') {
      res.writeHead(200);
      res.write(Buffer.alloc(32 * 1024, 2), () => req.socket.destroy());
      return;
    }
    if (path === '/early') {
      // Answers before reading the upload (a 413 from an app with a body limit).
      res.writeHead(413, { 'content-length': '8' });
      res.end('too big\n');
      req.resume();
      return;
    }
    if (path === '/big20') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let left = 20 * MB;
      const pump = (): void => {
        while (left > 0) {
          left -= SLAB.length;
          if (left <= 0) return void res.end(SLAB);
          if (!res.write(SLAB)) return void res.once('drain', pump);
        }
      };
      pump();
      return;
    }
    req.on('end', () => {
      const body = (entry.body = Buffer.concat(chunks));
      if (path === '/fine') {
        res.writeHead(299, 'Fine Thanks', ['X-Zed', '1', 'x-alpha', '2', 'X-Zed', '3', 'Content-Length', '2']);
        res.end('ok');
      } else if (path === '/trailers') {
        res.writeHead(200, { Trailer: 'X-Sum' });
        res.write('part one, ');
        res.addTrailers([['X-Sum', 'abc'], ['X-Other', 'z']]);
        res.end('part two');
      } else if (path === '/upload') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${body.length} ${sha(body)}`);
      } else if (path === '/download') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(BIG);
      } else if (path.startsWith('/status/')) {
        res.writeHead(Number(path.slice(8)));
        res.end('s');
      } else if (path === '/hop') {
        res.writeHead(200, ['Connection', 'X-Resp-Hop', 'X-Resp-Hop', 'secret', 'Proxy-Authenticate', 'Basic', 'X-End', 'kept', 'Content-Length', '0']);
        res.end();
      } else {
        // With a length, so a raw client knows where the JSON ends.
        const json = Buffer.from(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, body: body.toString('latin1') }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length });
        res.end(json);
      }
    });
  };
  const server = http.createServer(handle);
  server.on('checkContinue', (req, res) => {
    res.writeContinue();
    handle(req, res);
  });
  // A toy protocol after 101: the backend echoes upper-cased.
  server.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, rest: Buffer) => {
    sock.on('error', () => {});
    // The replayed head must still ask for this protocol (Upgrade is hop-by-hop everywhere else).
    if (req.headers.upgrade !== 'shout' || !/upgrade/i.test(req.headers.connection ?? '')) return void sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n');
    if (rest.length > 0) sock.write(rest.toString('latin1').toUpperCase());
    sock.on('data', (d: Buffer) => sock.write(d.toString('latin1').toUpperCase()));
  });
  server.on('connection', (sock: net.Socket) => {
    state.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    get connections() {
      return state.connections;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** 64 KiB reused for every write of the 20 MB body: the backend itself holds almost nothing. */
const SLAB = randomBytes(64 * 1024);
export const BIG20_SHA = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < (20 * MB) / SLAB.length; i++) h.update(SLAB);
  return h.digest('hex');
})();

export interface H1Result {
  status: number;
  reason: string;
  rawHeaders: string[];
  rawTrailers: string[];
  body: Buffer;
  /** The body arrived to its framed end. */
  complete: boolean;
  continued: boolean;
}

export function h1Request(port: number, agent: http.Agent | false, o: { method?: string; path: string; headers?: http.OutgoingHttpHeaders | string[]; body?: Buffer; expectContinue?: boolean }): Promise<H1Result> {
  return new Promise((resolve, reject) => {
    let continued = false;
    let responded = false;
    const req = http.request({ host: '127.0.0.1', port, agent, method: o.method ?? 'GET', path: o.path, headers: o.headers ?? {} }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => {});
      res.on('close', () =>
        resolve({ status: res.statusCode!, reason: res.statusMessage!, rawHeaders: res.rawHeaders, rawTrailers: res.rawTrailers, body: Buffer.concat(chunks), complete: res.complete, continued }),
      );
    });
    // After the head, a reset shows as an incomplete response; before it, it is the test's failure.
    req.on('error', (e) => (responded ? undefined : reject(e)));
    if (o.expectContinue) {
      req.on('continue', () => {
        continued = true;
        req.end(o.body);
      });
      req.flushHeaders();
    } else req.end(o.body);
  });
}

export function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** The end-to-end fields: without the Connection and Keep-Alive each hop writes for itself. */
export function endToEndPairs(raw: string[]): [string, string][] {
  return pairs(raw).filter(([n]) => !/^(connection|keep-alive)$/i.test(n));
}

/** A raw response's status line and end-to-end field lines (the proxy's own connection fields left out), and its body. */
export function splitResponse(text: string): { status: string; fields: string[]; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const [status, ...lines] = text.slice(0, end).split('\r\n');
  return { status: status!, fields: lines.filter((l) => !/^(connection|keep-alive):/i.test(l)), body: text.slice(end + 4) };
}

/**
 * A raw HTTP/1 backend that parses requests itself (chunked or by length, no
 * body otherwise) and logs each one with its decoded body; a body forwarded
 * unframed shows up here as a second, garbage request.
 */
export async function rawBackend(): Promise<{ port: number; requests: { head: string; body: string }[]; close(): Promise<void> }> {
  const requests: { head: string; body: string }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        let at = end + 4;
        let body = '';
        if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
          for (;;) {
            const eol = buf.indexOf('\r\n', at);
            if (eol < 0) return;
            const size = parseInt(buf.slice(at, eol), 16);
            if (size === 0) {
              const fin = buf.indexOf('\r\n\r\n', eol);
              if (fin < 0) return;
              at = fin + 4;
              break;
            }
            if (buf.length < eol + 2 + size + 2) return;
            body += buf.slice(eol + 2, eol + 2 + size);
            at = eol + 2 + size + 2;
          }
        } else {
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (cl) {
            const n = Number(cl[1]);
            if (buf.length < at + n) return;
            body = buf.slice(at, at + n);
            at += n;
          }
        }
        buf = buf.slice(at);
        requests.push({ head, body });
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
