// The injector: the mutating admission webhook as a process. Start-up gets a
// serving certificate (given files, or issued from the mesh's issuer for the
// Service's DNS names), then answers the API server until closed:
//   HTTPS ─► POST /inject (AdmissionReview) ─► namespace ─► decide ─► settings ─► sidecar ─► JSON Patch
import type { AddressInfo } from 'node:net';
import { createApiServer, type JsonEndpoint } from '../shared/api.js';
import type { Log } from '../shared/log.js';
import { admit, type NamespaceSource } from './admission.js';
import type { InjectorConfig } from './config.js';

export { admit, ADMISSION_API_VERSION, type AdmissionReviewOut, type NamespaceSource } from './admission.js';
export { destinationServiceUrl, identityServiceUrl, type InjectorConfig } from './config.js';
export { decide, alreadyInjected, type Decision, type NamespaceInfo } from './decide.js';
export { inject, describeProblems, type InjectResult } from './inject.js';
export { applyPatch, pointer, type PatchOperation } from './patch.js';
export { staticNamespaces, apiNamespaces } from './namespaces.js';

/** Where the webhook configuration points the API server. */
export const INJECT_PATH = '/inject';
/** The API server sends at most 3 MiB; a pod with a large spec comes close. */
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export interface InjectorServiceOptions {
  certPem: string;
  keyPem: string;
  host: string;
  port: number;
  config: InjectorConfig;
  namespaces: NamespaceSource;
}

export interface InjectorService {
  address: AddressInfo;
  url: string;
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

export function injectEndpoint(config: InjectorConfig, namespaces: NamespaceSource, log: Log): JsonEndpoint {
  return {
    path: INJECT_PATH,
    maxBodyBytes: MAX_REVIEW_BYTES,
    handle: (body) => admit(body, { config, namespaces, log }),
    // Only a body that is not an AdmissionReview gets here: the API server's own requests never do.
    failed: (error, meta) => log.warn('refused a request that is not an AdmissionReview', { remote: meta.remote, code: error.code, error: error.message }),
  };
}

export async function startInjector(o: InjectorServiceOptions, deps: { log: Log }): Promise<InjectorService> {
  const api = createApiServer({
    certPem: o.certPem,
    keyPem: o.keyPem,
    endpoints: [injectEndpoint(o.config, o.namespaces, deps.log)],
    // Nothing to wait for: the configuration is read and the certificate held before listening.
    ready: () => true,
  });
  const address = await api.listen(o.host, o.port);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  deps.log.info('listening', { addr: `${host}:${address.port}`, path: INJECT_PATH, image: o.config.image, version: o.config.version, nativeSidecar: String(o.config.nativeSidecar) });
  return { address, url: `https://${host}:${address.port}`, setCertificate: (c, k) => api.setCertificate(c, k), close: () => api.close() };
}
