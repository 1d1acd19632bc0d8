// The destination API: what a proxy asks the destination service and what it
// is told. Written once here; the controller (controller/destination/), the
// proxy's discovery client (proxy/discovery/) and `mesh endpoints` all follow it.
//
// Transport: the control plane's HTTP/2 + TLS + JSON (shared/api.ts).
//   POST /destination.mesh.io/v1/get   body: GetRequest
//   → 200, content-type application/x-ndjson: one Update per line, the first
//     the current state, then one each time it changes, until either side
//     closes. Refusals (malformed request) as every other endpoint: 4xx with
//     { code, message }.
// Updates are whole snapshots, not deltas: an endpoint set is small (tens to
// hundreds), a missed line is never a wrong state, and the proxy swaps sets.

/** Linkerd's destination port. */
export const DESTINATION_PORT = 8086;
export const DESTINATION_GET_PATH = '/destination.mesh.io/v1/get';
export const NDJSON_TYPE = 'application/x-ndjson';

export interface GetRequest {
  /**
   * What to resolve: `name.ns.svc.cluster.local:port` (also `name:port`,
   * `name.ns:port`, `name.ns.svc:port`, completed with contextNamespace and the
   * cluster domain), a host name the file source declares (`api.mesh.local:8080`),
   * or `address:port` / `[v6]:port` (a single pod or endpoint).
   */
  authority: string;
  /** The asking proxy's namespace: completes short names, as a pod's DNS search path would. */
  contextNamespace?: string;
}

/** What to retry (Linkerd's `retry-http` values). */
export type RetryHttpOn = '5xx' | 'gateway-error' | readonly number[];

/** Per-authority resilience, from Service annotations or the file source. */
export interface AuthoritySettings {
  /** The service this authority names, when it names one. */
  service?: { name: string; namespace: string };
  /** The authority's port is opaque (Service `config.mesh.io/opaque-ports`): TCP, no detection. */
  opaque: boolean;
  /** `config.mesh.io/timeout`: whole-request timeout → 504. */
  timeoutMs?: number;
  /** `config.mesh.io/retry-http`: responses to retry (HTTP). */
  retryHttp?: RetryHttpOn;
  /** `config.mesh.io/retry-grpc`: grpc-status names or numbers to retry (gRPC), e.g. ["unavailable", "14"]. */
  retryGrpc?: readonly string[];
  /** `config.mesh.io/retry-limit`: retries per request (default 1 when retries are on). */
  retryLimit?: number;
}

export interface Endpoint {
  /** IP address (no brackets for IPv6). */
  address: string;
  port: number;
  /** The identity its proxy proves (`sa.ns.serviceaccount.identity.<trust domain>`); absent when not meshed. */
  identity?: string;
  /** Ports of this endpoint that are opaque (its pod's `config.mesh.io/opaque-ports`). */
  opaquePorts?: readonly number[];
  zone?: string;
  labels?: Readonly<Record<string, string>>;
  /** Pod or workload name and namespace, for tables and tap. */
  name?: string;
  namespace?: string;
}

export type Update =
  | { kind: 'snapshot'; authority: string; settings: AuthoritySettings; endpoints: readonly Endpoint[] }
  /** Nobody knows this authority (now): the proxy forwards to the original destination unchanged. */
  | { kind: 'notFound'; authority: string; reason: string };

/** Service annotations (Kubernetes) read by the destination service; the file source uses the same keys without the prefix. */
export const SERVICE_ANNOTATIONS = {
  opaquePorts: 'config.mesh.io/opaque-ports',
  timeout: 'config.mesh.io/timeout',
  retryHttp: 'config.mesh.io/retry-http',
  retryGrpc: 'config.mesh.io/retry-grpc',
  retryLimit: 'config.mesh.io/retry-limit',
} as const;

/** Balancing and resilience defaults (Linkerd's; shared/ANCHORS.md). */
export const RESILIENCE_DEFAULTS = {
  ewmaDefaultRttMs: 30,
  ewmaDecayMs: 10_000,
  retryBudgetRatio: 0.2,
  retryBudgetMinPerSecond: 10,
  retryBudgetWindowMs: 10_000,
  /** Only requests whose body is absent or fully buffered within this are retried. */
  retryMaxBodyBytes: 64 * 1024,
  retryLimit: 1,
  failureAccrualConsecutive: 7,
  failureAccrualBackoffMinMs: 1_000,
  failureAccrualBackoffMaxMs: 60_000,
  failureAccrualJitter: 0.5,
} as const;
