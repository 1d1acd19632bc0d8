// mesh-proxy, composed. Two stacks, each an index that reads top to bottom:
//   outbound/ (4140): accept → original destination → meshed? → opaque port |
//     detect → HTTP stage | opaque TCP
//   inbound/ (4143): accept → original destination → detect → a peer proxy's
//     mTLS (terminate, connection header) | HTTP stage | opaque TCP
// Shared by both: connections.ts (admission, accounting, opaque forwarding),
// forward/ (the HTTP stage: our HTTP/1 and h2 codecs, one forwarder), connect/
// (every upstream: HTTP/1 pools, h2c and mTLS h2 connections), transport/ (mTLS
// between proxies), and the admin port (admin.ts) serving metrics and probes.
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { startAdmin } from './admin.js';
import { isIP } from 'node:net';
import { JsonStreamClient } from '../shared/api-stream.js';
import { defaultEndpointStats, Endpoint } from './balance/endpoint.js';
import type { DiscoveryConfig, ProxyConfig } from './config.js';
import { formatAddr } from './context.js';
import { Discovery } from './discovery/cache.js';
import type { Labels, Sample } from './metrics-exposition.js';
import { Connections } from './connections.js';
import { Upstreams } from './connect/upstreams.js';
import { ServerFirstMemory } from './detect/learned.js';
import { ServerFirstDetector } from './detect/server-first.js';
import { FdBudget } from './fdlimit.js';
import { Forwarder } from './forward/forwarder.js';
import { HttpStage } from './forward/http.js';
import { H1Pool } from './h1/index.js';
import { inboundStack } from './inbound/index.js';
import type { IdentityManager } from './identity/index.js';
import { listenAll } from './listener.js';
import type { Log } from './log.js';
import { holdAllocator, MemoryReclaimer, processSources, reclaimDefaults, releaseStartup } from './memory.js';
import { ProxyMetrics } from './metrics.js';
import { outboundStack } from './outbound/index.js';
import { MeshTls, resetAndDestroy } from './transport/tls.js';
import { TapHub } from './tap/hub.js';
import { createTapServer, type TapServer } from './tap/server.js';

export interface RunningProxy {
  servers: Server[];
  admin: Server;
  metrics: ProxyMetrics;
  /** Live tap of this proxy's requests (served on the control port when identity is on). */
  tap: TapHub;
  /** The workload certificate, when MESH_PROXY_IDENTITY_URL is set. */
  identity: IdentityManager | undefined;
  /** Stops accepting, lets open connections finish for up to graceMs, then resets the rest. */
  close(graceMs: number): Promise<void>;
}

/** The discovery cache on one stream client to the destination service, with its state in /metrics. */
function startDiscovery(c: DiscoveryConfig, upstreams: Upstreams, log: Log, metrics: ProxyMetrics): Discovery {
  const streams = new JsonStreamClient({ url: c.url, trustAnchorPem: c.trustAnchorsPem, serverName: c.serverName });
  streams.preconnect();
  const stats = defaultEndpointStats();
  const d = new Discovery({
    streams,
    log,
    contextNamespace: c.namespace,
    waitMs: c.waitMs,
    idleMs: c.idleMs,
    endpoint: (e) => {
      const target = { address: e.address, port: e.port, family: (isIP(e.address) === 6 ? 6 : 4) as 4 | 6 };
      return new Endpoint(target, formatAddr(target), e.identity, upstreams, stats, performance.now());
    },
  });
  metrics.discovery({ up: () => d.up, endpoints: () => endpointStates(d) });
  return d;
}

const ACCRUAL_STATES = ['ready', 'failed', 'probing'] as const;
/** Each service's three label sets, made once: the exposition keeps their text by label object. */
const stateLabels = new WeakMap<object, Labels[]>();

/** balancer_endpoints samples, made at scrape time. */
function endpointStates(d: Discovery): Sample[] {
  const out: Sample[] = [];
  for (const s of d.services()) {
    if (s.state !== 'ready') continue;
    const n = { ready: 0, failed: 0, probing: 0 };
    for (const e of s.balancer.endpoints) n[e.accrual?.state ?? 'ready']++;
    let labels = stateLabels.get(s);
    if (!labels) stateLabels.set(s, (labels = ACCRUAL_STATES.map((state) => ({ authority: s.authority, state }))));
    for (let i = 0; i < ACCRUAL_STATES.length; i++) out.push({ labels: labels[i]!, value: n[ACCRUAL_STATES[i]!] });
  }
  return out;
}

export async function startProxy(config: ProxyConfig, log: Log, metrics = new ProxyMetrics()): Promise<RunningProxy> {
  let ready = false;
  holdAllocator(log);
  // Certify while the listeners come up; /ready waits for the first certificate.
  // Loaded only when identity is on: the certificate code (pkijs) costs ~10 MB of RSS.
  const identity = config.identity === undefined ? undefined : (await import('./identity/index.js')).startIdentity(config.identity, { log, metrics });
  const meshTls = config.identity === undefined ? undefined : new MeshTls(config.identity.name, config.identity.trustAnchorsPem, config.detectTimeoutMs);
  // Tap: an observer of every exchange; its server shares the workload certificate.
  const tap = new TapHub(randomBytes(3).toString('hex'));
  const tapServer: TapServer | undefined =
    config.identity === undefined || config.tapIdentity === undefined
      ? undefined
      : createTapServer({ hub: tap, log, anchorsPem: config.identity.trustAnchorsPem, tapIdentity: config.tapIdentity });
  if (identity && meshTls) {
    identity.on('certified', (cert) => {
      meshTls.update(cert);
      tapServer?.update(cert);
    });
    const held = identity.current();
    if (held) {
      meshTls.update(held);
      tapServer?.update(held);
    }
  }
  // Descriptors: the soft limit raised to the hard one, and a reserve kept so
  // that at exhaustion new clients are refused at once, not accepted and reset.
  const fds = new FdBudget();
  const limit = fds.raise();
  log.info('descriptor limit', { soft: limit.soft, hard: limit.hard, reserve: limit.reserve });

  // Every upstream, per direction (each with its own connect timeout).
  const h1Pool = (dial: () => Promise<Socket>): H1Pool => new H1Pool({ dial, reset: resetAndDestroy });
  const upstreamsOut = new Upstreams({ connectTimeoutMs: config.connectTimeoutOutboundMs, log, h1Pool, ...(meshTls ? { tls: meshTls } : {}) });
  const upstreamsIn = new Upstreams({ connectTimeoutMs: config.connectTimeoutInboundMs, log, h1Pool });
  // Discovery (outbound only): the destination service's answers, endpoints dialled through the outbound upstreams.
  const discovery = config.discovery === undefined ? undefined : startDiscovery(config.discovery, upstreamsOut, log, metrics);
  // One forwarder; the HTTP stage of each direction hands it requests.
  const forwarder = new Forwarder({ log, observers: [tap], metrics });
  const stage = (upstreams: Upstreams, connectTimeoutMs: number, d?: Discovery): HttpStage =>
    new HttpStage({ log, metrics, forwarder, upstreams, connectTimeoutMs, headTimeoutMs: config.headTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, ...(d ? { discovery: d } : {}) });
  const conns = new Connections({
    log, metrics, fds, inboundMode: config.inboundMode, tap,
    dialMeshed: (t, peer, p) => upstreamsOut.dialMeshed(t, peer, p),
    ...(meshTls ? { tunnel: upstreamsOut.tunnel.bind(upstreamsOut) } : {}),
  });

  // Protocol detection with the server-speaks-first window; each direction learns its own destinations.
  const detector = (direction: 'inbound' | 'outbound'): ServerFirstDetector =>
    new ServerFirstDetector({
      direction,
      detect: { timeoutMs: config.detectTimeoutMs, maxBytes: config.detectMaxBytes, httpTimeoutMs: config.headTimeoutMs },
      windowMs: config.serverFirstWindowMs,
      memory: new ServerFirstMemory(config.serverFirstMemory, config.serverFirstTtlMs),
      clientFirst: new ServerFirstMemory(config.serverFirstMemory, config.serverFirstTtlMs),
      metrics,
      log,
    });
  const httpOut = stage(upstreamsOut, config.connectTimeoutOutboundMs, discovery);
  const httpIn = stage(upstreamsIn, config.connectTimeoutInboundMs);
  const outbound = outboundStack({
    config,
    log,
    conns,
    http: httpOut,
    identityOn: meshTls !== undefined,
    detector: detector('outbound'),
    metrics,
    ...(discovery ? { discovery } : {}),
  });
  const inbound = inboundStack({ config, log, conns, http: httpIn, meshTls, detector: detector('inbound') });
  const servers = [
    ...(await listenAll(config.inbound, inbound, { name: 'inbound', transparent: config.inboundMode === 'tproxy' }, log)),
    ...(await listenAll(config.outbound, outbound, { name: 'outbound', transparent: false }, log)),
  ];
  const admin = await startAdmin(config.admin, { metrics, ready: () => ready && (identity?.ready() ?? true) });
  if (tapServer) {
    await tapServer.listen(config.control);
    log.info('listening', { addr: `${config.control.host.includes(':') ? `[${config.control.host}]` : config.control.host}:${config.control.port}`, what: 'tap (mTLS)', allowed: config.tapIdentity });
  }
  for (const s of [...servers, admin]) {
    const a = s.address();
    if (a && typeof a === 'object') log.info('listening', { addr: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
  }
  if (config.meshedDestinations.size > 0) log.info('meshed destinations (override)', { count: config.meshedDestinations.size });
  if (config.discovery) log.info('discovery', { destination: config.discovery.url, server_name: config.discovery.serverName, namespace: config.discovery.namespace ?? '' });
  ready = true;
  const softLimitBytes = config.memorySoftLimitBytes === 0 ? Infinity : config.memorySoftLimitBytes;
  const reclaimer = new MemoryReclaimer(log, { ...reclaimDefaults, softLimitBytes }, processSources(() => metrics.requestsSoFar())).start();
  if (identity && !identity.ready()) {
    const off = identity.on('certified', () => {
      off();
      releaseStartup(log);
    });
  } else releaseStartup(log);

  let closing: Promise<void> | undefined;
  return {
    servers,
    admin,
    metrics,
    tap,
    identity,
    // A drain, as Linkerd's: no new connections; each open one is told to close once
    // what it carries is done (Connection: close, GOAWAY), so clients move elsewhere
    // while in-flight requests finish over upstreams still open; what is left at the
    // end of the grace is reset. The upstream pools close last. Once: a second call
    // (SIGINT after SIGTERM) waits for the first.
    close(graceMs: number): Promise<void> {
      closing ??= (async () => {
        ready = false;
        reclaimer.stop();
        identity?.stop();
        discovery?.close();
        const stopped = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
        httpOut.drain();
        httpIn.drain();
        await Promise.all([...stopped, conns.drain(graceMs)]);
        upstreamsOut.drain();
        upstreamsIn.drain();
        await tapServer?.close();
        await new Promise<void>((r) => admin.close(() => r()));
      })();
      return closing;
    },
  };
}
