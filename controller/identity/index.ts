// The identity service: the control plane's CA on the network. Start-up reads
// the issuer as `mesh identity init` left it (checked like a brought-your-own
// CA), picks the token reviewer by name, issues its own server certificate,
// then answers certify requests until closed:
//   HTTP/2 TLS ─► POST /identity.mesh.io/v1/certify ─► review token ─► name ─► issueLeaf
import type { AddressInfo } from 'node:net';
import type { Log } from '../../shared/log.js';
import { createApiServer } from '../../shared/api.js';
import { certifyEndpoint } from './certify.js';
import { loadIssuer, trustDomainWarnings } from './files.js';
import { createTokenReviewer, type TokenReviewerName } from './reviewers.js';
import { identityServerName, ownServerCert } from './server-cert.js';

export { CERTIFY_PATH, type CertifyRequestBody, type CertifyResponseBody } from './certify.js';
export { identityFiles, IdentityFilesError } from './files.js';
export { identityServerName } from './server-cert.js';
export { tokenReviewerNames, isTokenReviewerName, type TokenReviewerName } from './reviewers.js';
export { findKubernetesCredentials, type KubernetesCredentials } from '../../shared/kubernetes/credentials.js';

export interface IdentityServiceConfig {
  /** Holds ca.crt, issuer.crt, issuer.key and what the token reviewer needs (token.pub). */
  dir: string;
  host: string;
  port: number;
  trustDomain: string;
  leafLifetimeMs: number;
  tokenReviewer: TokenReviewerName;
  /** --token-reviewer kubernetes: a kubeconfig instead of KUBECONFIG or the pod's service account. */
  kubeconfig?: string;
}

export interface IdentityService {
  address: AddressInfo;
  /** `https://host:port`, for clients on this host. */
  url: string;
  /** The name the service's certificate carries; clients verify it against the trust anchor. */
  serverName: string;
  close(): Promise<void>;
}

export async function startIdentityService(config: IdentityServiceConfig, deps: { log: Log; now?: () => Date }): Promise<IdentityService> {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  const { issuer, anchor, warnings } = await loadIssuer(config.dir, now());
  for (const warning of [...warnings, ...trustDomainWarnings(issuer, config.trustDomain)]) log.warn('issuer', { warning });
  const reviewer = await createTokenReviewer(config.tokenReviewer, { dir: config.dir, kubeconfig: config.kubeconfig });
  const serverName = identityServerName(config.trustDomain);

  const own = await ownServerCert({ issuer, serverName, lifetimeMs: config.leafLifetimeMs, now, log });
  const api = createApiServer({
    certPem: own.current().chainPem,
    keyPem: own.current().keyPem,
    endpoints: [certifyEndpoint({ issuer, trustDomain: config.trustDomain, reviewer, leafLifetimeMs: config.leafLifetimeMs, log, now })],
    // Ready while it can prove who it is and sign: both certificates current.
    ready: () => now() < own.current().notAfter && now() < issuer.notAfter,
  });
  const renewal = own.renewInto(api);

  const address = await api.listen(config.host, config.port).catch((e: unknown) => {
    renewal.stop();
    throw e;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log.info('listening', {
    addr: `${host}:${address.port}`,
    name: serverName,
    trustDomain: config.trustDomain,
    tokenReviewer: config.tokenReviewer,
    anchor: anchor.subject,
    issuerExpires: issuer.notAfter.toISOString(),
  });
  return {
    address,
    url: `https://${host}:${address.port}`,
    serverName,
    async close() {
      renewal.stop();
      await api.close();
    },
  };
}
