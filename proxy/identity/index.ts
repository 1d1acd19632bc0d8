// The proxy's workload identity, composed: config → certify against the
// identity service (identity-service.ts) → manager (key, certificate,
// renewal) → log lines and metrics on every outcome.
import type { Log } from '../log.js';
import type { ProxyMetrics } from '../metrics.js';
import { systemClock, type Clock } from './clock.js';
import type { IdentityConfig } from './config.js';
import { identityServiceCertify } from './identity-service.js';
import { IdentityManager } from './manager.js';

export { loadIdentityConfig, type IdentityConfig } from './config.js';
export { IdentityManager, type WorkloadCert, type IdentityEvents } from './manager.js';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

export function startIdentity(config: IdentityConfig, deps: { log: Log; metrics: ProxyMetrics; clock?: Clock }): IdentityManager {
  const { log } = deps;
  const metrics = deps.metrics.identity();
  const manager = new IdentityManager({ identity: config.name, certify: identityServiceCertify(config), ...(deps.clock ? { clock: deps.clock } : {}) });
  manager.on('certified', (cert, refreshInMs) => {
    metrics.certExpiration.set(cert.notAfter.getTime() / 1000);
    metrics.refreshSuccess.inc();
    log.info('identity certified', { name: cert.identity, not_after: cert.notAfter.toISOString(), refresh_in: seconds(refreshInMs) });
  });
  manager.on('failed', (error, retryInMs) => {
    metrics.refreshFailure.inc();
    const held = manager.current();
    const expired = held !== undefined && held.notAfter.getTime() <= (deps.clock ?? systemClock).now();
    log.warn('identity refresh failed', { code: error.code, retry_in: seconds(retryInMs), reason: error.message, ...(expired ? { expired: 'true' } : {}) });
  });
  log.info('identity starting', { name: config.name, url: config.url, server_name: config.serverName });
  manager.start();
  return manager;
}
