// HTTP/1 carried as HTTP/2 between two proxies, on the seam's heads, and
// restored on the far side as the client sent it: method, request-target form
// (origin or absolute), header names with their case, their order (duplicates
// interleaved as they came), the version, and the response's reason phrase.
// What h2 cannot hold travels in headers the far-side proxy consumes:
//   mesh-orig-proto:   "HTTP/1.1" or "HTTP/1.0", "; absolute-form" when the target was a URL
//   mesh-orig-headers: the original header names in order, e.g. "Host,User-Agent,Accept"
//   mesh-orig-reason:  a reason phrase other than the standard one for the status
// Our own HTTP/2 framing carries repeated fields as they are, so unlike the
// former node:http2 path (orig-proto.ts) nothing needs a mesh-orig-dup-* name;
// those are still understood on the way in.
// Hop-by-hop headers never cross (the forwarder strips them before this).
import { STATUS_CODES } from 'node:http';
import { field, lowerName, sameLower } from '../headers.js';
import type { HeaderList, RequestHead, ResponseHead } from './types.js';

export const ORIG_PROTO = 'mesh-orig-proto';
const ORIG_HEADERS = 'mesh-orig-headers';
const ORIG_REASON = 'mesh-orig-reason';
const ABSOLUTE = '; absolute-form';
const DUP = 'mesh-orig-dup-';

/** Fields h2 forbids or that a proxy must not let an app forge. */
function dropped(lower: string): boolean {
  return lower === 'host' || lower === 'http2-settings' || (lower.length >= 10 && lower.startsWith('mesh-orig-'));
}

// The names list of the last head lowered, and the names it lists. An app's heads repeat their
// names (nginx's responses, a client's requests), and the parser hands common names out as
// constants, so the next head is checked against it by reference and the same flat string is
// sent again: no concatenation per head, and the peer's HPACK table already holds it.
let lastNames: string[] = [];
let lastList = '';

/** The h2 header list of an HTTP/1 message, plus the original names in order (a comma is no token character). */
function lowered(headers: HeaderList, out: HeaderList): string {
  const last = lastNames;
  let same = true;
  let k = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const lower = lowerName(name);
    if (lower.length >= 10 && lower.startsWith('mesh-orig-')) continue;
    if (same && k < last.length && last[k] === name) k++;
    else same = false;
    if (!dropped(lower)) out.push(lower, headers[i + 1]!);
  }
  if (same && k === last.length) return lastList;
  const names: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (!(name.length >= 10 && lowerName(name).startsWith('mesh-orig-'))) names.push(name);
  }
  lastNames = names;
  lastList = names.join(',');
  return lastList;
}

const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/is;

/** The h2 request head carrying an HTTP/1 request (headers already end-to-end). */
export function h2RequestOf(h1: RequestHead): RequestHead {
  const headers: HeaderList = [];
  let proto = h1.version === 10 ? 'HTTP/1.0' : 'HTTP/1.1';
  let scheme = 'http';
  let path = h1.target;
  let authority: string | undefined;
  // Split, not parsed: a URL parser would normalise the target ("/a/../b", default ports, quotes).
  // Origin-form ("/...", nearly every request) skips the expression (0.25% of a proxy's CPU at saturation).
  const absolute = h1.target.charCodeAt(0) === 0x2f ? null : ABSOLUTE_FORM.exec(h1.target);
  if (absolute) {
    scheme = absolute[1]!;
    authority = absolute[2]!;
    // h2 needs a path; an absolute-form target without one means "/" (RFC 9112 §3.2.2).
    path = absolute[3] || '/';
    proto += ABSOLUTE;
  }
  if (authority === undefined) {
    for (let i = 0; i < h1.headers.length; i += 2) {
      const n = h1.headers[i]!;
      if (sameLower(n, 'host')) {
        authority = h1.headers[i + 1]!;
        break;
      }
    }
  }
  const names = lowered(h1.headers, headers);
  headers.push(ORIG_PROTO, proto, ORIG_HEADERS, names);
  // No Host and no URL (HTTP/1.0): h2 still needs an authority; the names list leaves Host out again.
  return { method: h1.method, target: path, scheme, authority: authority ?? 'unknown', version: 20, headers };
}

/** True when an h2 request carries an HTTP/1 request from a peer proxy. */
export function carriesH1(h2: RequestHead): boolean {
  return field(h2.headers, ORIG_PROTO) !== undefined;
}

/**
 * Rebuilds [name, value, ...] in the order and case `list` names. The h2 list
 * was made in that same order, so the two are walked side by side (no
 * per-request map); anything else (fields the list does not name, a peer's
 * mesh-orig-dup-* fields, a reordering on the way) takes the general path.
 */
function restore(list: string | undefined, h2: HeaderList, host: string | undefined): HeaderList {
  if (list === undefined || list === '') return restoreQueued(list, h2, host);
  const names = splitNames(list);
  const lowers = splitLowers;
  const out: HeaderList = [];
  let i = 0;
  let h = host;
  for (let k = 0; k < names.length; k++) {
    const name = names[k]!;
    const lower = lowers[k]!;
    if (lower === 'host') {
      if (h !== undefined) out.push(name, h);
      h = undefined;
      continue;
    }
    while (i < h2.length && h2[i]!.startsWith('mesh-orig-')) {
      if (h2[i]!.startsWith(DUP)) return restoreQueued(list, h2, host);
      i += 2;
    }
    // h2 names are lower case (the peer's codec checked them): equal strings, mostly the same object.
    if (i >= h2.length || h2[i] !== lower) return restoreQueued(list, h2, host);
    out.push(name, h2[i + 1]!);
    i += 2;
  }
  for (; i < h2.length; i += 2) if (!h2[i]!.startsWith('mesh-orig-')) return restoreQueued(list, h2, host);
  return out;
}

// The last names list split, and its names lower-cased: a peer's heads repeat their list (and
// its HPACK table hands out the same string each time), so it is split once, not per head.
let splitList = '';
let splitNamesOf: string[] = [];
let splitLowers: string[] = [];

function splitNames(list: string): string[] {
  if (list === splitList) return splitNamesOf;
  const names = list.split(',');
  const lowers: string[] = [];
  for (let k = 0; k < names.length; k++) lowers.push(lowerName(names[k]!));
  splitList = list;
  splitNamesOf = names;
  splitLowers = lowers;
  return names;
}

/** restore() in general: values queued per name, taken in the list's order; fields it does not name follow. */
function restoreQueued(list: string | undefined, h2: HeaderList, host: string | undefined): HeaderList {
  const out: HeaderList = [];
  const values = new Map<string, string[]>();
  for (let i = 0; i < h2.length; i += 2) {
    let name = h2[i]!;
    if (name.startsWith('mesh-orig-')) {
      if (!name.startsWith(DUP)) continue;
      name = name.slice(DUP.length);
    }
    const q = values.get(name);
    if (q) q.push(h2[i + 1]!);
    else values.set(name, [h2[i + 1]!]);
  }
  if (list !== undefined && list !== '') {
    let from = 0;
    while (from <= list.length) {
      let to = list.indexOf(',', from);
      if (to < 0) to = list.length;
      const name = list.slice(from, to);
      from = to + 1;
      const lower = lowerName(name);
      if (lower === 'host') {
        if (host !== undefined) out.push(name, host);
        host = undefined;
        continue;
      }
      const v = values.get(lower)?.shift();
      if (v !== undefined) out.push(name, v);
    }
  } else if (host !== undefined && list === undefined) out.push('host', host);
  for (const [name, q] of values) for (const v of q) out.push(name, v);
  return out;
}

/** The HTTP/1 request an h2 request from a peer proxy carries; undefined when it carries none. */
export function h1RequestOf(h2: RequestHead): RequestHead | undefined {
  const proto = field(h2.headers, ORIG_PROTO);
  if (proto === undefined) return undefined;
  const absolute = proto.endsWith(ABSOLUTE);
  const version = (absolute ? proto.slice(0, -ABSOLUTE.length) : proto) === 'HTTP/1.0' ? 10 : 11;
  const authority = h2.authority ?? '';
  const list = field(h2.headers, ORIG_HEADERS);
  return {
    method: h2.method,
    target: absolute ? `${h2.scheme ?? 'http'}://${authority}${h2.target}` : h2.target,
    scheme: undefined,
    authority: undefined,
    version,
    headers: restore(list, h2.headers, list !== undefined || authority !== 'unknown' ? authority : undefined),
  };
}

/** The h2 response head carrying an HTTP/1 response (headers already end-to-end). */
export function h2ResponseOf(h1: ResponseHead): ResponseHead {
  const headers: HeaderList = [];
  const names = lowered(h1.headers, headers);
  headers.push(ORIG_HEADERS, names);
  if (h1.reason !== '' && h1.reason !== STATUS_CODES[h1.status]) headers.push(ORIG_REASON, h1.reason);
  return { status: h1.status, reason: '', version: 20, headers };
}

/** The HTTP/1 response an h2 response from a peer proxy carries (`version`: the client's). */
export function h1ResponseOf(h2: ResponseHead, version: 10 | 11): ResponseHead {
  const list = field(h2.headers, ORIG_HEADERS);
  const reason = field(h2.headers, ORIG_REASON);
  return { status: h2.status, reason: reason ?? STATUS_CODES[h2.status] ?? '', version, headers: restore(list, h2.headers, undefined) };
}

/** h2 trailers from HTTP/1 trailers: names lower-cased, nothing else changes. */
export function h2TrailersOf(h1: HeaderList): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < h1.length; i += 2) out.push(lowerName(h1[i]!), h1[i + 1]!);
  return out;
}
