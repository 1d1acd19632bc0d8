// Generators for the fuzzer: a seeded PRNG and valid HTTP/1 messages with
// what each must parse to.
import { mulberry32 } from '../fuzz-random.js';

export interface Rng {
  int(n: number): number;
}

/** A seeded integer source (mulberry32, shared with the other fuzzers). */
export function rng(seed: number): Rng {
  const next = mulberry32(seed);
  return { int: (n: number): number => (next() % n) | 0 };
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'];
const NAMES = ['Host', 'User-Agent', 'Accept', 'Accept-Encoding', 'Cookie', 'Authorization', 'X-Request-Id', 'Content-Type', 'Cache-Control', 'Referer', 'X-Forwarded-For', 'traceparent', 'x-b3-traceid', 'If-None-Match'];
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:@/";
const VCHAR = Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join('');

function pick<T>(r: Rng, a: readonly T[] | string): T {
  return a[r.int(a.length)] as T;
}
function str(r: Rng, alphabet: string, min: number, max: number): string {
  let s = '';
  const n = min + r.int(max - min + 1);
  for (let i = 0; i < n; i++) s += alphabet[r.int(alphabet.length)];
  return s;
}
function randomCase(r: Rng, s: string): string {
  if (r.int(3) !== 0) return s;
  let out = '';
  for (const c of s) out += r.int(2) === 0 ? c.toUpperCase() : c.toLowerCase();
  return out;
}
function ows(r: Rng): string {
  return r.int(4) === 0 ? pick(r, [' ', '  ', '\t', ' \t']) : '';
}

/** A field value: VCHAR words with inner spaces, sometimes obs-text. */
function value(r: Rng): string {
  let v = str(r, VCHAR, 1, 20);
  if (r.int(4) === 0) v += ` ${str(r, VCHAR, 1, 10)}`;
  if (r.int(20) === 0) v += '\u00e9\u00ff';
  return v;
}

export interface Expected {
  head: string;
  body: string;
  trailers: string;
}

/** Fields as [wire, parsed-name, parsed-value] lists. */
function fields(r: Rng, n: number): { wire: string; parsed: string[] } {
  let wire = '';
  const parsed: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.int(4) === 0 ? `X-${str(r, TCHAR, 1, 12)}` : randomCase(r, pick(r, NAMES));
    const v = r.int(15) === 0 ? '' : value(r);
    wire += `${name}:${ows(r)}${v}${v === '' ? '' : ows(r)}\r\n`;
    parsed.push(name, v);
  }
  return { wire, parsed };
}

function body(r: Rng): { framing: 'none' | 'length' | 'chunked'; wire: string; decoded: string; trailersWire: string; trailers: string[] } {
  const kind = r.int(3);
  if (kind === 0) return { framing: 'none', wire: '', decoded: '', trailersWire: '', trailers: [] };
  const data = r.int(5) === 0 ? str(r, VCHAR + '\r\n\0\u00ff', 0, 300) : str(r, VCHAR, 0, 40);
  if (kind === 1) return { framing: 'length', wire: data, decoded: data, trailersWire: '', trailers: [] };
  let wire = '';
  let rest = data;
  while (rest.length > 0) {
    const n = 1 + r.int(Math.min(rest.length, 64));
    const ext = r.int(4) === 0 ? `;${str(r, TCHAR, 1, 6)}${r.int(2) === 0 ? `=${str(r, TCHAR, 1, 6)}` : `="${str(r, 'ab c,;=', 0, 6)}"`}` : '';
    const size = r.int(5) === 0 ? `0${n.toString(16).toUpperCase()}` : n.toString(16);
    wire += `${size}${ext}\r\n${rest.slice(0, n)}\r\n`;
    rest = rest.slice(n);
  }
  const t = r.int(3) === 0 ? fields(r, 1 + r.int(3)) : { wire: '', parsed: [] };
  wire += `0\r\n${t.wire}\r\n`;
  return { framing: 'chunked', wire, decoded: data, trailersWire: t.wire, trailers: t.parsed };
}

/**
 * 1-3 messages in a row; all but the last keep the connection open (a
 * message after "Connection: close" is not read by llhttp, nor by our server).
 */
export function genMessages(r: Rng, mode: 'request' | 'response'): { bytes: Buffer; expected: Expected[]; untilClose: boolean } {
  const count = 1 + r.int(3);
  let wire = '';
  const expected: Expected[] = [];
  let untilClose = false;
  for (let i = 0; i < count && !untilClose; i++) {
    const last = i === count - 1;
    const http10 = r.int(8) === 0;
    const f = fields(r, r.int(13));
    let b = body(r);
    // HTTP/1.0 with Transfer-Encoding closes after the message (RFC 9112 §6.1): only last.
    while (http10 && !last && b.framing === 'chunked') b = body(r);
    let framing = '';
    if (b.framing === 'length' || (b.framing === 'none' && r.int(3) === 0)) framing = `Content-Length: ${b.decoded.length}\r\n`;
    if (b.framing === 'chunked') framing = `${randomCase(r, 'Transfer-Encoding')}: chunked\r\n`;
    let conn = '';
    const parsed = [...f.parsed];
    if (http10) conn = 'Connection: keep-alive\r\n';
    else if (last && r.int(5) === 0) conn = 'Connection: close\r\n';
    if (mode === 'request') {
      const method = b.framing === 'none' ? pick(r, METHODS) : pick(r, ['POST', 'PUT', 'PATCH', 'GET', 'DELETE']);
      const target = r.int(10) === 0 ? `http://${str(r, 'abc.', 1, 8)}/${str(r, PCHAR, 0, 20)}` : `/${str(r, PCHAR, 0, 40)}${r.int(3) === 0 ? `?${str(r, PCHAR + '?', 0, 30)}` : ''}`;
      const version = http10 ? 10 : 11;
      // Fields go in the order written: ours, then framing and connection.
      if (framing !== '') parsed.push(...framing.slice(0, -2).split(': '));
      if (conn !== '') parsed.push(...conn.slice(0, -2).split(': '));
      wire += `${r.int(10) === 0 && i > 0 ? '\r\n' : ''}${method} ${target} HTTP/1.${version - 10}\r\n${f.wire}${framing}${conn}\r\n${b.wire}`;
      // HEAD/GET bodies are still bodies in a request: framing says so.
      expected.push({ head: `${method} ${target} ${version} ${parsed.join('\u0000')}`, body: b.decoded, trailers: b.trailers.join('\u0000') });
    } else {
      const status = pick(r, [200, 200, 201, 404, 500, 302]);
      const reason = r.int(6) === 0 ? '' : pick(r, ['OK', 'Not Found', 'Some Reason Here', 'x']);
      const version = http10 ? 10 : 11;
      if (framing === '' && !last) framing = `Content-Length: ${b.decoded.length}\r\n`;
      if (b.framing === 'none' && framing === '') untilClose = true;
      if (framing !== '') parsed.push(...framing.slice(0, -2).split(': '));
      if (conn !== '') parsed.push(...conn.slice(0, -2).split(': '));
      const interim = r.int(10) === 0 ? 'HTTP/1.1 100 Continue\r\n\r\n' : '';
      wire += `${interim}HTTP/1.${version - 10} ${status}${reason === '' && r.int(2) === 0 ? '' : ` ${reason}`}\r\n${f.wire}${framing}${conn}\r\n${b.wire}`;
      expected.push({ head: `${status} ${reason} ${version} ${parsed.join('\u0000')}`, body: b.decoded, trailers: b.trailers.join('\u0000') });
    }
  }
  return { bytes: Buffer.from(wire, 'latin1'), expected, untilClose };
}
