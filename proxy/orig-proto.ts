// HTTP/1 carried as HTTP/2 between proxies, and restored on the far side as
// the client sent it: method, request-target form (origin or absolute),
// header names with their case, their order (duplicates interleaved as they
// came), and the response's reason phrase. What h2 cannot hold travels in
// three headers the far-side proxy consumes:
//   mesh-orig-proto:   "HTTP/1.1" or "HTTP/1.0", "; absolute-form" when the target was a URL
//   mesh-orig-headers: the original header names in order, e.g. "Host,User-Agent,Accept"
//   mesh-orig-reason:  a reason phrase other than the standard one for the status
//   mesh-orig-dup-NAME: the second and later values of a field h2 allows once
//                      (user-agent, content-type, date, ...: Node refuses arrays there)
// Hop-by-hop headers never cross (headers.ts strips them before this).
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

export const ORIG_PROTO = 'mesh-orig-proto';
export const ORIG_HEADERS = 'mesh-orig-headers';
export const ORIG_REASON = 'mesh-orig-reason';
const ABSOLUTE = '; absolute-form';
const DUP = 'mesh-orig-dup-';

/** Fields Node's http2 accepts once per message (its kSingleValueHeaders). */
const singleValue = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range',
  'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range',
  'referer', 'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/** Header fields h2 forbids or that a proxy must not let an app forge. */
function dropped(lower: string): boolean {
  return lower === 'host' || lower === 'http2-settings' || lower.startsWith('mesh-orig-');
}

function add(out: OutgoingHttpHeaders, lower: string, value: string): void {
  const had = out[lower];
  if (had === undefined) out[lower] = value;
  else if (singleValue.has(lower)) add(out, DUP + lower, value);
  else if (Array.isArray(had)) had.push(value);
  else out[lower] = [String(had), value];
}

/** The original names in order, comma-separated (a comma is no token character). */
function namesList(raw: readonly string[]): string {
  let list = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length > 9 && name.toLowerCase().startsWith('mesh-orig-')) continue;
    list = list === '' ? name : `${list},${name}`;
  }
  return list;
}

export interface H1Request {
  method: string;
  /** As on the request line: "/path?q" or "http://host/path". */
  url: string;
  /** "1.1" or "1.0". */
  httpVersion: string;
  /** End-to-end headers, original case and order, flat [name, value, ...]. */
  rawHeaders: readonly string[];
}

/** The h2 request headers carrying an HTTP/1 request. */
export function h2RequestOf(req: H1Request): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':method': req.method };
  let proto = `HTTP/${req.httpVersion}`;
  // Split, not parsed: a URL parser would normalise the target ("/a/../b", default ports, quotes).
  const absolute = /^(https?):\/\/([^/?#]*)(.*)$/is.exec(req.url);
  let authority: string | undefined;
  if (absolute) {
    out[':scheme'] = absolute[1]!;
    authority = absolute[2]!;
    // h2 needs a path; an absolute-form target without one means "/" (RFC 9112 §3.2.2).
    out[':path'] = absolute[3] || '/';
    proto += ABSOLUTE;
  } else {
    out[':scheme'] = 'http';
    out[':path'] = req.url;
  }
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower === 'host') authority ??= raw[i + 1];
    if (!dropped(lower)) add(out, lower, raw[i + 1]!);
  }
  // No Host and no URL (HTTP/1.0): h2 still needs an authority; the names list leaves Host out again.
  out[':authority'] = authority ?? 'unknown';
  out[ORIG_PROTO] = proto;
  out[ORIG_HEADERS] = namesList(raw);
  return out;
}

export interface RestoredRequest {
  method: string;
  url: string;
  /** HTTP version the client spoke. */
  httpVersion: string;
  rawHeaders: string[];
}

/**
 * Queues of values per lowercase name, from h2's raw list, without pseudo and
 * mesh-orig headers; the extra values of a single-value field (mesh-orig-dup-*)
 * queue behind its first.
 */
function valuesByName(raw: readonly string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    let name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name.startsWith('mesh-orig-')) {
      if (!name.startsWith(DUP)) continue;
      name = name.slice(DUP.length);
    }
    const q = m.get(name);
    if (q) q.push(raw[i + 1]!);
    else m.set(name, [raw[i + 1]!]);
  }
  return m;
}

/** Rebuilds [name, value, ...] in the order and case `list` names; fields it does not name follow. */
function restore(list: string | undefined, values: Map<string, string[]>, host: string | undefined): string[] {
  const out: string[] = [];
  if (list !== undefined) {
    for (const name of list === '' ? [] : list.split(',')) {
      const lower = name.toLowerCase();
      if (lower === 'host') {
        if (host !== undefined) out.push(name, host);
        host = undefined;
        continue;
      }
      const v = values.get(lower)?.shift();
      if (v !== undefined) out.push(name, v);
    }
  } else if (host !== undefined) out.push('host', host);
  for (const [name, q] of values) for (const v of q) out.push(name, v);
  return out;
}

/** undefined when the stream carries no orig-proto: a plain h2 request. */
export function h1RequestOf(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): RestoredRequest | undefined {
  const proto = headers[ORIG_PROTO];
  if (typeof proto !== 'string') return undefined;
  const absolute = proto.endsWith(ABSOLUTE);
  const version = (absolute ? proto.slice(0, -ABSOLUTE.length) : proto) === 'HTTP/1.0' ? '1.0' : '1.1';
  const authority = String(headers[':authority'] ?? '');
  const path = String(headers[':path'] ?? '/');
  const list = headers[ORIG_HEADERS];
  return {
    method: String(headers[':method'] ?? 'GET'),
    url: absolute ? `${String(headers[':scheme'] ?? 'http')}://${authority}${path}` : path,
    httpVersion: version,
    rawHeaders: restore(typeof list === 'string' ? list : undefined, valuesByName(rawHeaders), typeof list === 'string' || authority !== 'unknown' ? authority : undefined),
  };
}

/** The h2 response headers carrying an HTTP/1 response (end-to-end raw headers). */
export function h2ResponseOf(status: number, reason: string | undefined, raw: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (!dropped(lower)) add(out, lower, raw[i + 1]!);
  }
  out[ORIG_HEADERS] = namesList(raw);
  if (reason !== undefined && reason !== STATUS_CODES[status]) out[ORIG_REASON] = reason;
  return out;
}

export interface RestoredResponse {
  status: number;
  reason: string | undefined;
  rawHeaders: string[];
}

export function h1ResponseOf(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): RestoredResponse {
  const list = headers[ORIG_HEADERS];
  const reason = headers[ORIG_REASON];
  return {
    status: Number(headers[':status'] ?? 502),
    reason: typeof reason === 'string' ? reason : undefined,
    rawHeaders: restore(typeof list === 'string' ? list : undefined, valuesByName(rawHeaders), undefined),
  };
}

/** h2 trailers from an HTTP/1 raw trailer list. */
export function h2TrailersOf(raw: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) add(out, raw[i]!.toLowerCase(), raw[i + 1]!);
  return out;
}
