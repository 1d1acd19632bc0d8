// An Update as it arrives from the destination service: JSON off the wire,
// checked field by field before anything uses it, so a controller bug (or a
// newer controller) cannot crash the proxy or send traffic nowhere.
import { isIP } from 'node:net';
import type { AuthoritySettings, Endpoint as WireEndpoint, Update } from '../../contract/destination.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function settingsOf(v: unknown): AuthoritySettings {
  const s = isObject(v) ? v : {};
  const out: { -readonly [K in keyof AuthoritySettings]: AuthoritySettings[K] } = { opaque: s.opaque === true };
  if (typeof s.timeoutMs === 'number' && s.timeoutMs > 0 && Number.isFinite(s.timeoutMs)) out.timeoutMs = s.timeoutMs;
  if (s.retryHttp === '5xx' || s.retryHttp === 'gateway-error') out.retryHttp = s.retryHttp;
  else if (Array.isArray(s.retryHttp)) out.retryHttp = s.retryHttp.filter((c): c is number => typeof c === 'number');
  if (Array.isArray(s.retryGrpc)) out.retryGrpc = s.retryGrpc.filter((c): c is string => typeof c === 'string');
  if (typeof s.retryLimit === 'number' && Number.isInteger(s.retryLimit) && s.retryLimit >= 0) out.retryLimit = s.retryLimit;
  return out;
}

function endpointOf(v: unknown): WireEndpoint | undefined {
  if (!isObject(v)) return undefined;
  const { address, port, identity } = v;
  if (typeof address !== 'string' || isIP(address) === 0) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const e: { -readonly [K in keyof WireEndpoint]: WireEndpoint[K] } = { address, port };
  if (typeof identity === 'string' && identity !== '') e.identity = identity;
  if (Array.isArray(v.opaquePorts)) e.opaquePorts = v.opaquePorts.filter((p): p is number => typeof p === 'number');
  return e;
}

/** The update, or undefined when it is not one (logged by the caller, otherwise ignored). */
export function parseUpdate(msg: unknown): Update | undefined {
  if (!isObject(msg) || typeof msg.authority !== 'string') return undefined;
  if (msg.kind === 'notFound') return { kind: 'notFound', authority: msg.authority, reason: typeof msg.reason === 'string' ? msg.reason : '' };
  if (msg.kind !== 'snapshot' || !Array.isArray(msg.endpoints)) return undefined;
  const endpoints: WireEndpoint[] = [];
  for (const raw of msg.endpoints) {
    const e = endpointOf(raw);
    if (e !== undefined) endpoints.push(e);
  }
  return { kind: 'snapshot', authority: msg.authority, settings: settingsOf(msg.settings), endpoints };
}
