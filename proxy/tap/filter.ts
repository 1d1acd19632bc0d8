// Which requests a tap watcher wants. Read only while someone watches, so
// plain string work is fine here.
import type { TapFilter } from '../../contract/tap.js';
import type { ConnContext } from '../context.js';
import type { ExchangeView } from '../forward/forwarder.js';
import type { RequestHead } from '../message/types.js';
import { sameLower } from '../headers.js';

/** :authority on h2, Host on HTTP/1, the host of an absolute-form target, or "". */
export function requestAuthority(r: RequestHead): string {
  if (r.authority !== undefined) return r.authority;
  const h = r.headers;
  for (let i = 0; i < h.length; i += 2) if (sameLower(h[i]!, 'host')) return h[i + 1]!;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(r.target);
  return abs?.[1] ?? '';
}

/** The path (with query) of a request, whatever form its target took. */
export function requestPath(r: RequestHead): string {
  if (r.method === 'CONNECT') return '';
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(r.target);
  if (abs === null) return r.target;
  const rest = r.target.slice(abs[0].length);
  return rest === '' ? '/' : rest;
}

/** The other end as filters name it: the client inbound, the destination outbound. */
export function peerOf(ctx: ConnContext): string {
  return ctx.direction === 'inbound' ? ctx.src : ctx.targetAddr;
}

function hostOf(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const i = addr.lastIndexOf(':');
  return i < 0 ? addr : addr.slice(0, i);
}

export function peerMatches(want: string, addr: string): boolean {
  if (want === addr) return true;
  const bare = want.startsWith('[') && want.endsWith(']') ? want.slice(1, -1) : want;
  return bare === hostOf(addr);
}

export function connectionMatches(f: TapFilter, ctx: ConnContext): boolean {
  if (f.direction !== undefined && f.direction !== ctx.direction) return false;
  if (f.peer !== undefined && !peerMatches(f.peer, peerOf(ctx))) return false;
  return true;
}

export function matchesFilter(f: TapFilter, x: ExchangeView): boolean {
  if (!connectionMatches(f, x.ctx)) return false;
  const r = x.request;
  if (f.method !== undefined && f.method.toUpperCase() !== r.method) return false;
  if (f.pathPrefix !== undefined && !requestPath(r).startsWith(f.pathPrefix)) return false;
  if (f.authority !== undefined && f.authority.toLowerCase() !== requestAuthority(r).toLowerCase()) return false;
  return true;
}
