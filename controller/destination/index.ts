// The destination service: where proxies learn what an authority resolves to.
// Start-up opens the sources (each reads its first state), issues the service's
// own TLS certificate from the identity directory's issuer, then streams
// answers until closed:
//   HTTP/2 TLS ─► POST /destination.mesh.io/v1/get ─► parse authority ─► resolver ─► sources (kubernetes, file, …)
import type { AddressInfo } from 'node:net';
import { createApiServer } from '../../shared/api.js';
import type { Log } from '../../shared/log.js';
import { loadIssuer } from '../identity/files.js';
import { ownServerCert } from '../identity/server-cert.js';
import { DEFAULT_CLUSTER_DOMAIN } from './authority.js';
import { getEndpoint } from './get.js';
import { destinationServerName } from './names.js';
import { createResolver } from './resolver.js';
import { openSources, type SourceSpec } from './sources.js';

export { DEFAULT_CLUSTER_DOMAIN, parseAuthority, type Authority } from './authority.js';
export { destinationServerName, DESTINATION_SERVICE_ACCOUNT } from './names.js';
export { parseSourceSpec, type SourceSpec } from './sources.js';
export { FileSourceError } from './file-format.js';

export interface DestinationServiceConfig {
  /** Identity directory: ca.crt, issuer.crt, issuer.key (the service's certificate is issued from it). */
  dir: string;
  host: string;
  port: number;
  sources: readonly SourceSpec[];
  trustDomain: string;
  clusterDomain?: string;
  /** Lifetime of the service's own certificate (default 24 h). */
  certLifetimeMs?: number;
}

export interface DestinationService {
  address: AddressInfo;
  url: string;
  serverName: string;
  close(): Promise<void>;
}

export async function startDestinationService(config: DestinationServiceConfig, deps: { log: Log; now?: () => Date }): Promise<DestinationService> {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  const clusterDomain = config.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const { issuer } = await loadIssuer(config.dir, now());
  const serverName = destinationServerName(config.trustDomain);
  const lifetime = config.certLifetimeMs ?? 24 * 3_600_000;
  const own = await ownServerCert({ issuer, serverName, lifetimeMs: lifetime, now, log });

  const sources = await openSources(config.sources, { trustDomain: config.trustDomain, log });
  const resolver = createResolver(sources);
  const api = createApiServer({
    certPem: own.current().chainPem,
    keyPem: own.current().keyPem,
    endpoints: [],
    streams: [getEndpoint({ resolver, clusterDomain, log })],
    // Ready once every source has its first state and the certificate is current.
    ready: () => resolver.ready() && now() < own.current().notAfter,
  });
  const renewal = own.renewInto(api);
  const shutdown = async (): Promise<void> => {
    renewal.stop();
    resolver.close();
    await Promise.all(sources.map((s) => s.close()));
  };

  const address = await api.listen(config.host, config.port).catch(async (e: unknown) => {
    await shutdown();
    throw e;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log.info('listening', { addr: `${host}:${address.port}`, name: serverName, sources: sources.map((s) => s.name).join(','), clusterDomain });
  return {
    address,
    url: `https://${host}:${address.port}`,
    serverName,
    async close() {
      await api.close();
      await shutdown();
    },
  };
}
