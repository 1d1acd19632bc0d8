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
export const TAP_MAX_RPS = 10_000;

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
  | { kind: 'dropped'; count: number };
