// One endpoint of a discovered service, as the balancer and the forwarder
// see it: where it is, the identity its proxy proves (none: not meshed, plain
// TCP), how loaded and how healthy it is. The same object lives across
// discovery updates as long as the endpoint does, so its latency estimate and
// failure count survive a snapshot.
import { RESILIENCE_DEFAULTS } from '../../contract/destination.js';
import type { SocketAddress } from '../../native/index.js';
import type { Connector } from '../connect/upstreams.js';
import type { Conversion } from '../forward/forwarder.js';
import type { Dispatcher } from '../message/types.js';
import { FailureAccrual, type AccrualOptions } from './accrual.js';
import { PeakEwma } from './ewma.js';

export interface EndpointStatsOptions extends AccrualOptions {
  defaultRttMs: number;
  decayMs: number;
}

/** Linkerd's defaults (contract/destination.ts); `random` draws the accrual's jitter. */
export function defaultEndpointStats(random: () => number = Math.random): EndpointStatsOptions {
  const R = RESILIENCE_DEFAULTS;
  return {
    defaultRttMs: R.ewmaDefaultRttMs,
    decayMs: R.ewmaDecayMs,
    consecutive: R.failureAccrualConsecutive,
    backoffMinMs: R.failureAccrualBackoffMinMs,
    backoffMaxMs: R.failureAccrualBackoffMaxMs,
    jitter: R.failureAccrualJitter,
    random,
  };
}

export class Endpoint {
  readonly ewma: PeakEwma | undefined;
  readonly accrual: FailureAccrual | undefined;

  /**
   * `stats` undefined: an endpoint nobody balances over (a request's
   * original destination when discovery knows nothing better).
   */
  constructor(
    readonly target: SocketAddress,
    /** "10.0.0.7:8080": the connector's key and the metrics' label. */
    readonly key: string,
    readonly identity: string | undefined,
    private readonly connector: Connector,
    stats: EndpointStatsOptions | undefined,
    now: number,
  ) {
    this.ewma = stats && new PeakEwma(stats.defaultRttMs, stats.decayMs, now);
    this.accrual = stats && new FailureAccrual(stats);
  }

  /** Where a request received as `protocol` goes: h2 to a meshed endpoint's proxy, else as it came. */
  dispatcher(protocol: 'h1' | 'h2'): Dispatcher {
    const c = this.connector;
    if (this.identity !== undefined || protocol === 'h2') return c.h2(this.target, this.key, this.identity);
    return c.h1(this.target, this.key);
  }

  conversion(protocol: 'h1' | 'h2'): Conversion {
    return protocol === 'h1' && this.identity !== undefined ? 'h1-to-mesh' : 'none';
  }
}
