// What an authority's settings say about retries and timeouts, turned once
// per discovery update into a shape the exchange reads with plain compares:
// which statuses and gRPC codes to retry, how many times, within what time.
import { RESILIENCE_DEFAULTS, type AuthoritySettings } from '../../contract/destination.js';

/** gRPC status names (lowercase, as annotations spell them) → codes. */
const GRPC_CODES: Readonly<Record<string, number>> = {
  ok: 0, cancelled: 1, unknown: 2, 'invalid-argument': 3, invalid_argument: 3, 'deadline-exceeded': 4, deadline_exceeded: 4,
  'not-found': 5, not_found: 5, 'already-exists': 6, already_exists: 6, 'permission-denied': 7, permission_denied: 7,
  'resource-exhausted': 8, resource_exhausted: 8, 'failed-precondition': 9, failed_precondition: 9, aborted: 10,
  'out-of-range': 11, out_of_range: 11, unimplemented: 12, internal: 13, unavailable: 14, 'data-loss': 15, data_loss: 15,
  unauthenticated: 16,
};

export class RoutePolicy {
  /** 0: no timeout. */
  readonly timeoutMs: number;
  /** Retries per request; 0 when nothing is retried on a response. */
  readonly retryLimit: number;
  /** Statuses to retry, indexed by status: one array read per response. */
  readonly #statuses: Uint8Array | undefined;
  readonly #grpc: Uint8Array | undefined;

  constructor(s: AuthoritySettings | undefined) {
    this.timeoutMs = s?.timeoutMs !== undefined && s.timeoutMs > 0 ? s.timeoutMs : 0;
    let statuses: Uint8Array | undefined;
    const on = s?.retryHttp;
    if (on !== undefined) {
      statuses = new Uint8Array(600);
      if (on === '5xx') statuses.fill(1, 500, 600);
      else if (on === 'gateway-error') for (const c of [502, 503, 504]) statuses[c] = 1;
      else for (const c of on) if (Number.isInteger(c) && c >= 100 && c < 600) statuses[c] = 1;
    }
    let grpc: Uint8Array | undefined;
    if (s?.retryGrpc !== undefined && s.retryGrpc.length > 0) {
      grpc = new Uint8Array(17);
      for (const name of s.retryGrpc) {
        const t = name.trim().toLowerCase();
        const code = /^\d+$/.test(t) ? Number(t) : GRPC_CODES[t];
        if (code !== undefined && code > 0 && code < 17) grpc[code] = 1;
      }
    }
    this.#statuses = statuses;
    this.#grpc = grpc;
    const anyRetry = statuses !== undefined || grpc !== undefined;
    this.retryLimit = anyRetry ? Math.max(0, Math.min(10, s?.retryLimit ?? RESILIENCE_DEFAULTS.retryLimit)) : 0;
  }

  /** Whether a response with this status may be retried. */
  retriesStatus(status: number): boolean {
    return this.#statuses !== undefined && status < 600 && this.#statuses[status] === 1;
  }

  /** Whether a grpc-status value (as received, a decimal string) may be retried. */
  retriesGrpc(value: string): boolean {
    if (this.#grpc === undefined) return false;
    const code = Number(value);
    return code > 0 && code < 17 && this.#grpc[code] === 1;
  }

  get retriesGrpcAtAll(): boolean {
    return this.#grpc !== undefined;
  }
}

/** No settings: no timeout, no retries on responses. */
export const NO_POLICY = new RoutePolicy(undefined);
