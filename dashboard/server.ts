// The dashboard's HTTP server, for one operator's browser on this machine:
//   GET /, /app.js, …                      the page (dashboard/web, as shipped)
//   GET /api/workloads?namespace=          a stat row per deployment, rolling window
//   GET /api/workloads/NAME/edges?namespace=  its inbound (by client) and outbound (by destination) rows
//   GET /api/tap?resource=&namespace=…     Server-Sent Events from the tap service
// Errors are JSON { code, message }, the control-plane APIs' shape.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TAP_MAX_RPS, type TapServiceRequest } from '../contract/tap.js';
import type { JsonStreamClient } from '../shared/api-stream.js';
import { Collector, type CollectorDeps } from './collector.js';
import { serveStatic, WEB_ROOT } from './static.js';
import { relayTap } from './tap-relay.js';
import { edgesView, workloadsView } from './views.js';

export type DashboardErrorCode = 'MESH_DASHBOARD_NOT_FOUND' | 'MESH_DASHBOARD_BAD_REQUEST' | 'MESH_DASHBOARD_HOST' | 'MESH_DASHBOARD_METHOD' | 'MESH_DASHBOARD_INTERNAL';

export class DashboardError extends Error {
  constructor(readonly status: number, readonly code: DashboardErrorCode, message: string) {
    super(message);
    this.name = 'DashboardError';
  }
}

export interface DashboardOptions {
  host: string;
  port: number;
  namespace: string;
  windowMs: number;
  scrapeIntervalMs: number;
  /** Per tab (the proxies sample beyond it). */
  tapMaxRps: number;
  webRoot?: string;
}

export interface DashboardDeps extends CollectorDeps {
  tap: JsonStreamClient;
}

export interface Dashboard {
  url: string;
  address: AddressInfo;
  close(): Promise<void>;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A page on 127.0.0.1 can still be reached by another site through DNS
 * rebinding (evil.example resolving to 127.0.0.1); that request carries the
 * other site's Host. Only names of this machine are answered: the API relays
 * live requests, headers included.
 */
function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name === '127.0.0.1' || name === '::1';
}

function namespaceOf(u: URL, fallback: string): string {
  const ns = u.searchParams.get('namespace') || fallback;
  if (!NAME.test(ns)) throw new DashboardError(400, 'MESH_DASHBOARD_BAD_REQUEST', `"${ns}" is not a namespace name`);
  return ns;
}

function tapRequestOf(u: URL, namespace: string): TapServiceRequest {
  const resource = u.searchParams.get('resource');
  if (!resource) throw new DashboardError(400, 'MESH_DASHBOARD_BAD_REQUEST', 'resource is required (deploy/NAME, pod/NAME, …)');
  const r: TapServiceRequest = { resource, namespace };
  const filter: NonNullable<TapServiceRequest['filter']> = {};
  const method = u.searchParams.get('method');
  const path = u.searchParams.get('path');
  if (method) filter.method = method.toUpperCase();
  if (path) filter.pathPrefix = path;
  if (Object.keys(filter).length > 0) r.filter = filter;
  const maxRps = u.searchParams.get('maxRps');
  if (maxRps) {
    const n = Number(maxRps);
    if (!(n > 0 && n <= TAP_MAX_RPS)) throw new DashboardError(400, 'MESH_DASHBOARD_BAD_REQUEST', `maxRps: "${maxRps}" is not a number in (0, ${TAP_MAX_RPS}]`);
    r.maxRps = n;
  }
  return r;
}

export async function startDashboard(o: DashboardOptions, deps: DashboardDeps): Promise<Dashboard> {
  const collector = new Collector(deps, { windowMs: o.windowMs, idleMs: 60_000 });
  collector.namespace(o.namespace);
  const webRoot = o.webRoot ?? WEB_ROOT;

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req.headers.host)) throw new DashboardError(403, 'MESH_DASHBOARD_HOST', `Host ${JSON.stringify(req.headers.host ?? '')} is not this machine's`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new DashboardError(405, 'MESH_DASHBOARD_METHOD', `${req.method} is not served here`);
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (u.pathname === '/api/workloads') {
      const ns = namespaceOf(u, o.namespace);
      return sendJson(res, 200, workloadsView(ns, await collector.read(ns)));
    }
    const edges = /^\/api\/workloads\/([^/]+)\/edges$/.exec(u.pathname);
    if (edges !== null) {
      const ns = namespaceOf(u, o.namespace);
      const name = decodeURIComponent(edges[1]!);
      const view = edgesView(ns, name, await collector.read(ns));
      if (view === undefined) throw new DashboardError(404, 'MESH_DASHBOARD_NOT_FOUND', `no deployment ${JSON.stringify(name)} in ${ns}`);
      return sendJson(res, 200, view);
    }
    if (u.pathname === '/api/tap') return relayTap(req, res, tapRequestOf(u, namespaceOf(u, o.namespace)), { client: deps.tap, maxRps: o.tapMaxRps });
    if (u.pathname.startsWith('/api/')) throw new DashboardError(404, 'MESH_DASHBOARD_NOT_FOUND', `${u.pathname}: no such API`);
    if (!(await serveStatic(webRoot, u.pathname, res))) throw new DashboardError(404, 'MESH_DASHBOARD_NOT_FOUND', `${u.pathname}: no such page`);
  };

  const server: Server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (e instanceof DashboardError) return sendJson(res, e.status, { code: e.code, message: e.message });
      sendJson(res, 500, { code: 'MESH_DASHBOARD_INTERNAL', message: (e as Error).message });
    });
  });

  // Rounds never overlap: a slow proxy delays the next reading rather than piling reads up.
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    void collector.round().finally(() => {
      if (!stopped) timer = setTimeout(tick, o.scrapeIntervalMs);
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  tick();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    address,
    async close() {
      stopped = true;
      clearTimeout(timer);
      deps.tap.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
