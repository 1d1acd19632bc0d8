// The sidecar contract: what a meshed pod is made of, written once. mesh-init's
// flags, mesh-proxy's variables and defaults, its ports and uid, and where a
// pod mounts its identity. The proxy and mesh-init read their defaults from
// here; the injector, `mesh inject`, `mesh install`, the demo, the tests and the
// bench render from it. Change a value here and every one of them follows.

/** The proxy's uid and gid: mesh-init never redirects this user's traffic, or the proxy would loop into itself. */
export const PROXY_UID = 2102;

/** The proxy's listeners (Linkerd's numbers, so operators' firewall rules and habits carry over). */
export const PROXY_PORTS = {
  /** Every pod-bound TCP connection lands here (all addresses). */
  inbound: 4143,
  /** Every app-originated TCP connection lands here (loopback only). */
  outbound: 4140,
  /** The tap stream. */
  control: 4190,
  /** `/metrics`, `/live`, `/ready`. */
  admin: 4191,
} as const;

/** The proxy's own ports: reached directly, never redirected into the proxy. */
export const PROXY_OWN_PORTS = { from: PROXY_PORTS.control, to: PROXY_PORTS.admin } as const;

export const ADMIN_PATHS = { live: '/live', ready: '/ready', metrics: '/metrics' } as const;

/** The admin endpoint as seen from inside the pod. */
export const adminUrl = (path: (typeof ADMIN_PATHS)[keyof typeof ADMIN_PATHS], host = '127.0.0.1'): string => `http://${host}:${PROXY_PORTS.admin}${path}`;

/** Server-speaks-first or preamble-less protocols: SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached. */
export const DEFAULT_OPAQUE_PORTS: readonly number[] = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211];

export type InterceptionMode = 'redirect' | 'tproxy';
export const INTERCEPTION_MODES: readonly InterceptionMode[] = ['redirect', 'tproxy'];
export type ProxyLogLevel = 'error' | 'warn' | 'info' | 'debug';
export const PROXY_LOG_LEVELS: readonly ProxyLogLevel[] = ['error', 'warn', 'info', 'debug'];

/** mesh-proxy's whole configuration surface: these variables and nothing else. */
export const PROXY_ENV = {
  inboundPort: 'MESH_PROXY_INBOUND_PORT',
  outboundPort: 'MESH_PROXY_OUTBOUND_PORT',
  inboundAddresses: 'MESH_PROXY_INBOUND_ADDRESSES',
  outboundAddresses: 'MESH_PROXY_OUTBOUND_ADDRESSES',
  inboundMode: 'MESH_PROXY_INBOUND_MODE',
  adminAddress: 'MESH_PROXY_ADMIN_ADDRESS',
  adminPort: 'MESH_PROXY_ADMIN_PORT',
  opaquePorts: 'MESH_PROXY_OPAQUE_PORTS',
  detectTimeout: 'MESH_PROXY_DETECT_TIMEOUT',
  detectMaxBytes: 'MESH_PROXY_DETECT_MAX_BYTES',
  serverFirstWindow: 'MESH_PROXY_SERVER_FIRST_WINDOW',
  serverFirstMemory: 'MESH_PROXY_SERVER_FIRST_MEMORY',
  serverFirstTtl: 'MESH_PROXY_SERVER_FIRST_TTL',
  outboundConnectTimeout: 'MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT',
  inboundConnectTimeout: 'MESH_PROXY_INBOUND_CONNECT_TIMEOUT',
  headTimeout: 'MESH_PROXY_HEAD_TIMEOUT',
  idleTimeout: 'MESH_PROXY_IDLE_TIMEOUT',
  memorySoftLimit: 'MESH_PROXY_MEMORY_SOFT_LIMIT_MIB',
  logLevel: 'MESH_PROXY_LOG_LEVEL',
  identityUrl: 'MESH_PROXY_IDENTITY_URL',
  identityName: 'MESH_PROXY_IDENTITY_NAME',
  identityTokenFile: 'MESH_PROXY_IDENTITY_TOKEN_FILE',
  identityTrustAnchors: 'MESH_PROXY_IDENTITY_TRUST_ANCHORS',
  identityServerName: 'MESH_PROXY_IDENTITY_SERVER_NAME',
  /** Override: destinations whose proxy is reached over mTLS as given, without asking discovery (hosts without a control plane). */
  meshedDestinations: 'MESH_PROXY_MESHED_DESTINATIONS',
  /** The destination service (`https://host:8086`); unset: no discovery, requests go to their original destination. */
  destinationUrl: 'MESH_PROXY_DESTINATION_URL',
  /** The name its certificate carries (default mesh-destination.mesh.serviceaccount.identity.<trust domain>). */
  destinationServerName: 'MESH_PROXY_DESTINATION_SERVER_NAME',
  /** The pod's namespace: completes short names ("web:8080") when asking discovery. */
  namespace: 'MESH_PROXY_NAMESPACE',
  /** How long the first request for a new authority waits for discovery's answer before going to its original destination. */
  discoveryWait: 'MESH_PROXY_DISCOVERY_WAIT',
  /** An authority unused this long is forgotten (its stream to the destination service closed). */
  discoveryIdle: 'MESH_PROXY_DISCOVERY_IDLE',
  requireIdentityPorts: 'MESH_PROXY_REQUIRE_IDENTITY_PORTS',
  controlPort: 'MESH_PROXY_CONTROL_PORT',
  /** The one identity allowed to tap this proxy; default the tap service's in the control plane's namespace. */
  tapIdentity: 'MESH_PROXY_TAP_IDENTITY',
} as const;

/** The control plane's namespace and the tap service's account, which name its default identity. */
export const CONTROL_PLANE = { namespace: 'mesh', tapServiceAccount: 'mesh-tap' } as const;

/** `mesh-tap.mesh.serviceaccount.identity.<trust domain>`, the trust domain taken from the proxy's own identity. */
export function defaultTapIdentity(ownIdentity: string): string {
  const marker = '.serviceaccount.identity.';
  const i = ownIdentity.indexOf(marker);
  const trustDomain = i < 0 ? 'cluster.local' : ownIdentity.slice(i + marker.length);
  return `${CONTROL_PLANE.tapServiceAccount}.${CONTROL_PLANE.namespace}${marker}${trustDomain}`;
}

/** What the proxy assumes when a variable is unset (durations in milliseconds). */
export const PROXY_DEFAULTS = {
  /** '::' is dual-stack: one listener takes redirected IPv4 and IPv6 alike. */
  inboundAddresses: ['::'] as readonly string[],
  /** REDIRECT rewrites IPv6 connections to ::1, IPv4 ones to 127.0.0.1. */
  outboundAddresses: ['127.0.0.1', '::1'] as readonly string[],
  adminAddress: '::',
  inboundMode: 'redirect' as InterceptionMode,
  detectTimeoutMs: 10_000,
  detectMaxBytes: 8192,
  /**
   * A client silent this long after accept gets its upstream opened anyway,
   * so a server that speaks first is heard (0: off, wait for the client as
   * before). Measured on loopback, accept to first byte: curl, h2load, psql,
   * redis-cli p90 ≤ 0.5 ms, max 0.7 ms; grpc-js p50 2.4 ms, p90 6 ms, max
   * 9.4 ms. 15 ms covers them all with margin, and a server-first protocol's
   * first contact through both proxies still stays well under 50 ms.
   */
  serverFirstWindowMs: 15,
  /** Destinations remembered as server-speaks-first (least recently confirmed forgotten first). */
  serverFirstMemory: 10_000,
  /** How long a destination stays known as server-speaks-first without being seen so again. */
  serverFirstTtlMs: 600_000,
  outboundConnectTimeoutMs: 1000,
  inboundConnectTimeoutMs: 100,
  /** A request head must arrive within this (HAProxy's `timeout http-request`). */
  headTimeoutMs: 10_000,
  /** Keep-alive client connections with no request in flight close after this. */
  idleTimeoutMs: 60_000,
  /**
   * Over this RSS (MiB), once load has fallen, memory is reclaimed though traffic goes on
   * (proxy/memory.ts); 0: only when the proxy falls quiet. An idle proxy is ~50 MB.
   */
  memorySoftLimitMiB: 64,
  logLevel: 'info' as ProxyLogLevel,
  discoveryWaitMs: 1000,
  discoveryIdleMs: 5 * 60_000,
} as const;

/** mesh-init's flags, as the injector writes them into the init container. */
export const INIT_FLAGS = {
  mode: '--mode',
  inboundPort: '--inbound-port',
  outboundPort: '--outbound-port',
  proxyUid: '--proxy-uid',
  proxyGid: '--proxy-gid',
  proxyPorts: '--proxy-ports',
  inboundPorts: '--inbound-ports',
  skipInboundPorts: '--skip-inbound-ports',
  skipOutboundPorts: '--skip-outbound-ports',
  skipSubnets: '--skip-subnets',
  iptablesMode: '--iptables-mode',
} as const;

/** TPROXY's packet mark and local-route table (Istio's numbers). */
export const TPROXY_DEFAULTS = { mark: 1337, routeTable: 133 } as const;

/** The `aud` of the service-account tokens workloads present to the identity service. */
export const IDENTITY_AUDIENCE = 'identity.mesh.io';

/** Names in a meshed pod's spec. */
export const SIDECAR = {
  proxyContainer: 'mesh-proxy',
  initContainer: 'mesh-init',
  /** Projected volume: the service-account token for IDENTITY_AUDIENCE and the trust anchors. */
  identityVolume: 'mesh-identity',
  identityDir: '/var/run/secrets/mesh.io/identity',
  tokenFile: 'token',
  trustAnchorsFile: 'trust-anchors.pem',
  /** kubelet rotates the projected token at 80% of this. */
  tokenExpirationSeconds: 86_400,
  /** mesh-init runs with a read-only root filesystem; iptables takes its lock under /run. */
  xtablesLockVolume: 'mesh-init-xtables-lock',
  /** Port names, at most 15 characters (IANA_SVC_NAME). */
  inboundPortName: 'mesh-proxy',
  adminPortName: 'mesh-admin',
} as const;

export const identityTokenPath = `${SIDECAR.identityDir}/${SIDECAR.tokenFile}`;
export const trustAnchorsPath = `${SIDECAR.identityDir}/${SIDECAR.trustAnchorsFile}`;

/** The binaries of the mesh image (Dockerfile), by the name a container runs. */
export const IMAGE_COMMANDS = {
  proxy: 'mesh-proxy',
  /** The proxy with CAP_NET_ADMIN as a file capability: TPROXY's IP_TRANSPARENT for a non-root uid. */
  proxyTproxy: 'mesh-proxy-tproxy',
  init: 'mesh-init',
  controller: 'mesh-controller',
  /** Waits for the proxy's /ready: a postStart hook holds the app back until then. */
  await: 'mesh-await',
} as const;
