// The tap service: finds the proxies of a resource and merges their tap
// streams for `mesh tap` and the dashboard.
//   HTTP/2 TLS ─► POST /tap.mesh.io/v1/tap {resource, to?, filter} ─► targets
//     ─► one mTLS watch per proxy (port 4190, as mesh-tap.mesh.serviceaccount…)
//     ─► events tagged with their pod, one stream back
// The service proves the tap identity with a leaf it issues itself from the
// issuer at start-up and renews (like the identity service's server name), and
// uses the same leaf as its client certificate toward proxies.
import type { AddressInfo } from 'node:net';
import { CONTROL_PLANE, PROXY_PORTS } from '../../contract/sidecar.js';
import { TAP_PODS_PATH, TAP_SERVICE_PATH, TAP_WATCH_PATH, type TapEvent, type TapFilter, type TapServiceEvent, type TapServiceRequest, type WatchRequest } from '../../contract/tap.js';
import { ApiError, createApiServer, malformed, type JsonEndpoint, type JsonStreamEndpoint } from '../../shared/api.js';
import { JsonStreamClient } from '../../shared/api-stream.js';
import type { Log } from '../../shared/log.js';
import { identityName } from '../../ca/identity.js';
import { loadIssuer, readIdentityFile } from '../identity/files.js';
import { ownServerCert, type ServerCert } from '../identity/server-cert.js';
import { formatResource, parseResource, type TargetSource, type TapTarget } from './targets.js';

export { parseResource, type TargetSource, type TapTarget, type Resource } from './targets.js';

export interface TapServiceConfig {
  dir: string;
  host: string;
  port: number;
  trustDomain: string;
  leafLifetimeMs: number;
  /** Where the proxies' tap ports are (default 4190). */
  proxyTapPort?: number;
}

export interface TapService {
  address: AddressInfo;
  url: string;
  serverName: string;
  close(): Promise<void>;
}

export const tapServiceName = (trustDomain: string): string => identityName(CONTROL_PLANE.tapServiceAccount, CONTROL_PLANE.namespace, trustDomain);

const FILTER_KEYS = new Set(['method', 'pathPrefix', 'authority', 'opaque']);

/** A request body, checked field by field. */
export function parseTapRequest(v: unknown): TapServiceRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed('the body must be a JSON object');
  const o = v as Record<string, unknown>;
  const str = (k: string, required = false): string | undefined => {
    const x = o[k];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'string' || x === '') throw malformed(`${k} must be a non-empty string`);
    return x;
  };
  const out: TapServiceRequest = { resource: str('resource', true)! };
  for (const k of ['namespace', 'to', 'toNamespace'] as const) {
    const x = str(k);
    if (x !== undefined) out[k] = x;
  }
  if (o.maxRps !== undefined) {
    if (typeof o.maxRps !== 'number' || !(o.maxRps > 0)) throw malformed('maxRps must be a positive number');
    out.maxRps = o.maxRps;
  }
  if (o.filter !== undefined) {
    if (typeof o.filter !== 'object' || o.filter === null) throw malformed('filter must be an object');
    for (const [k, x] of Object.entries(o.filter)) {
      if (!FILTER_KEYS.has(k)) throw malformed(`unknown filter field ${JSON.stringify(k)}`);
      if (k === 'opaque' ? typeof x !== 'boolean' : typeof x !== 'string' || x === '') throw malformed(`filter.${k} is not valid`);
    }
    out.filter = o.filter as TapServiceRequest['filter'] & object;
  }
  return out;
}

/** The watch streams for one tap request: one per proxy, merged into `emit`; all closed on abort. */
export async function mergeTaps(
  req: TapServiceRequest,
  source: TargetSource,
  o: { cert: () => ServerCert; anchorsPem: string; port: number; log: Log },
  emit: (e: TapServiceEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const resource = parseResource(req.resource, req.namespace);
  const targets = await source.targets(resource);
  if (targets.length === 0) throw new ApiError(404, 'MESH_TAP_NO_PODS', `${formatResource(resource)} has no meshed pods`);
  let to: Set<string> | undefined;
  if (req.to !== undefined) {
    const toResource = parseResource(req.to, req.toNamespace ?? req.namespace);
    to = new Set(await source.addresses(toResource));
    if (to.size === 0) throw new ApiError(404, 'MESH_TAP_NO_PODS', `${formatResource(toResource)} has no pods`);
  }
  const filter: TapFilter = { ...(req.filter ?? {}) };
  // --to: the source's outbound requests, kept here when their destination is one of the target's addresses.
  if (to !== undefined) filter.direction = 'outbound';
  const watch: WatchRequest = { filter, ...(req.maxRps === undefined ? {} : { maxRps: req.maxRps }) };
  const clients: JsonStreamClient[] = [];
  signal.addEventListener('abort', () => clients.forEach((c) => c.close()), { once: true });
  // 'watching' goes once every proxy has said its watch is in place (or failed):
  // from then on, what the client does is seen.
  const started: TapTarget[] = [];
  let settled = 0;
  const settle = (t: TapTarget, ok: boolean): void => {
    if (ok) started.push(t);
    if (++settled === targets.length) emit({ kind: 'watching', pods: started.map((x) => ({ pod: x.pod, namespace: x.namespace })) });
  };
  for (const t of targets) clients.push(watchOne(t, watch, to, o, emit, settle));
}

function hostOf(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const i = addr.lastIndexOf(':');
  return i < 0 ? addr : addr.slice(0, i);
}

function watchOne(
  t: TapTarget,
  watch: WatchRequest,
  to: Set<string> | undefined,
  o: { cert: () => ServerCert; anchorsPem: string; port: number; log: Log },
  emit: (e: TapServiceEvent) => void,
  settle: (t: TapTarget, ok: boolean) => void,
): JsonStreamClient {
  let settled = false;
  const cert = o.cert();
  const host = t.address.includes(':') ? `[${t.address}]` : t.address;
  const client = new JsonStreamClient({ url: `https://${host}:${o.port}`, trustAnchorPem: o.anchorsPem, serverName: t.identity, clientCertPem: cert.chainPem, clientKeyPem: cert.keyPem });
  const src = { pod: t.pod, namespace: t.namespace };
  // --to filters on req lines; their rsp/end follow only for ids kept.
  const kept = to === undefined ? undefined : new Set<string>();
  client.open(TAP_WATCH_PATH, watch, {
    onMessage(m) {
      const e = m as TapEvent;
      if (e.kind === 'started') {
        if (!settled) settle(t, (settled = true));
        return;
      }
      if (kept !== undefined) {
        if (e.kind === 'req' || e.kind === 'open') {
          if (!to!.has(hostOf(e.dst))) return;
          kept.add(e.id);
        } else if ('id' in e) {
          if (!kept.has(e.id)) return;
          if (e.kind === 'end' || e.kind === 'close') kept.delete(e.id);
        }
      }
      emit({ ...e, ...src });
    },
    onEnd(error) {
      if (error === undefined) return;
      o.log.warn('tap of a proxy ended', { pod: t.pod, namespace: t.namespace, address: t.address, error: error.message });
      emit({ kind: 'proxyError', ...src, message: error.message });
      if (!settled) settle(t, !(settled = true));
    },
  });
  return client;
}

export async function startTapService(config: TapServiceConfig, deps: { log: Log; targets: TargetSource; now?: () => Date }): Promise<TapService> {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  const { issuer } = await loadIssuer(config.dir, now());
  const anchorsPem = await readIdentityFile(config.dir, 'anchor');
  const serverName = tapServiceName(config.trustDomain);
  const own = await ownServerCert({ issuer, serverName, lifetimeMs: config.leafLifetimeMs, now, log });
  const endpoint: JsonStreamEndpoint = {
    path: TAP_SERVICE_PATH,
    async handle(body, meta, emit, signal) {
      const req = parseTapRequest(body);
      log.info('tap', { from: meta.remote, resource: req.resource, namespace: req.namespace ?? 'default', to: req.to ?? '' });
      await mergeTaps(req, deps.targets, { cert: own.current, anchorsPem, port: config.proxyTapPort ?? PROXY_PORTS.control, log }, emit, signal);
    },
    failed: (e, meta) => log.info('tap refused', { from: meta.remote, code: e.code, reason: e.message }),
  };
  const pods: JsonEndpoint = {
    path: TAP_PODS_PATH,
    async handle(body) {
      const o = (typeof body === 'object' && body !== null ? body : {}) as { resource?: unknown; namespace?: unknown };
      if (typeof o.resource !== 'string' || o.resource === '') throw malformed('resource must be a non-empty string');
      if (o.namespace !== undefined && typeof o.namespace !== 'string') throw malformed('namespace must be a string');
      return { pods: await deps.targets.pods(parseResource(o.resource, o.namespace)) };
    },
  };
  const api = createApiServer({ certPem: own.current().chainPem, keyPem: own.current().keyPem, endpoints: [pods], streams: [endpoint], ready: () => now() < own.current().notAfter });
  const renewal = own.renewInto(api);
  const address = await api.listen(config.host, config.port).catch((e: unknown) => {
    renewal.stop();
    throw e;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log.info('listening', { addr: `${host}:${address.port}`, name: serverName });
  return {
    address,
    url: `https://${host}:${address.port}`,
    serverName,
    async close() {
      renewal.stop();
      await api.close();
    },
  };
}
