// The tap API: a live stream of what one proxy sees, request by request.
// Served by every proxy on its control port (4190) over mutual TLS, to the tap
// service's identity only; the tap service merges proxies' streams for
// `mesh tap` and the dashboard. Same transport habits as the other control-
// plane APIs: HTTP/2, POST a JSON body, 200 with one JSON event per line.
//
//   POST /tap.mesh.io/v1/watch   body: WatchRequest   → NDJSON TapEvent lines

export const TAP_WATCH_PATH = '/tap.mesh.io/v1/watch';

/** What to show; every field narrows. */
export interface TapFilter {
  direction?: 'inbound' | 'outbound';
  method?: string;
  /** The request path starts with this. */
  pathPrefix?: string;
  /** The :authority / Host equals this (case-insensitive). */
  authority?: string;
  /** The other end's address ("ip" or "ip:port") equals this: the client inbound, the destination outbound. */
  peer?: string;
  /** Opaque connections too (open/close events). Default true. */
  opaque?: boolean;
}

export interface WatchRequest {
  filter?: TapFilter;
  /** Requests per second shown at most (sampled beyond); default 100, at most 10,000. */
  maxRps?: number;
}

export const TAP_DEFAULT_MAX_RPS = 100;
// Tap samples (as linkerd's --max-rps): a watcher sees at most this many
// requests a second per proxy, however much it asks. Measured (bench mesh-tap):
// every request tapped at ~14k req/s cost the proxy 14-22% of its throughput
// (three events per request to encode and send); a bounded sample keeps a
// flooded watcher's cost to a few percent.
export const TAP_MAX_RPS = 1_000;

/** Fields every event about one exchange or connection carries to place it. */
export interface TapPlace {
  /** `<proxy-start-id>:<n>`, unique per proxy run. */
  id: string;
  proxy: 'in' | 'out';
  src: string;
  dst: string;
  /** `true`, `no_identity`, `opaque` (the labels' value). */
  tls: string;
  clientId?: string;
  serverId?: string;
}

export type TapEvent =
  | (TapPlace & { kind: 'req'; method: string; scheme: string; authority: string; path: string; /** ms since the epoch */ at: number })
  | { kind: 'rsp'; id: string; status: number; /** time to response headers, µs */ latencyUs: number }
  | { kind: 'end'; id: string; /** whole exchange, µs */ durationUs: number; responseBytes: number; grpcStatus?: string; /** the proxy's error code when it did not end cleanly */ error?: string }
  | (TapPlace & { kind: 'open'; protocol: string; sni?: string; at: number })
  | { kind: 'close'; id: string; durationUs: number; bytesIn: number; bytesOut: number; error?: string }
  /** Events this subscriber did not get: it was slower than the traffic, or over its maxRps. */
  | { kind: 'dropped'; count: number }
  /** The first line: the watch is in place, everything after this is seen. */
  | { kind: 'started' };

// ── The tap service (`mesh-controller tap`), for `mesh tap` and the dashboard ──
//   POST /tap.mesh.io/v1/tap   body: TapServiceRequest → NDJSON TapServiceEvent lines

export const TAP_SERVICE_PATH = '/tap.mesh.io/v1/tap';
/** The tap service's port (Linkerd's tap API port). */
export const TAP_SERVICE_PORT = 8088;

export interface TapServiceRequest {
  /** `deploy/web`, `pod/web-1`, `ns/default`, `svc/api`, or a bare name (a deployment). */
  resource: string;
  namespace?: string;
  /** Only requests from `resource` to this one (outbound from the first, to the second's addresses). */
  to?: string;
  toNamespace?: string;
  filter?: Omit<TapFilter, 'peer' | 'direction'>;
  maxRps?: number;
}

/** Which pod's proxy saw it. */
export interface TapSource {
  pod: string;
  namespace: string;
}

export type TapServiceEvent =
  | (TapEvent & TapSource)
  /** One proxy could not be watched (or stopped): the others go on. */
  | (TapSource & { kind: 'proxyError'; message: string })
  /** Every proxy of the resource is being watched (those that could not be are reported as proxyError first). */
  | { kind: 'watching'; pods: TapSource[] };

//   POST /tap.mesh.io/v1/pods  body: { resource, namespace? } → { pods: PodEntry[] }
// The pods of a resource, meshed or not: where `mesh stat` and the dashboard scrape.
export const TAP_PODS_PATH = '/tap.mesh.io/v1/pods';

export interface PodEntry {
  pod: string;
  namespace: string;
  address: string;
  /** Present when it runs a mesh proxy. */
  identity?: string;
  deployment: string;
}
