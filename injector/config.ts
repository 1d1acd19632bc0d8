import { DESTINATION_PORT } from '../contract/destination.js';
// What the injector needs to know about the control plane it injects for,
// beyond the pod itself: one typed shape, filled from flags (mesh-controller
// injector) or from `mesh inject --manual`'s flags.
export interface InjectorConfig {
  /** The mesh image: mesh-init, mesh-proxy and mesh-await all live in it. */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Recorded on every injected pod (mesh.io/proxy-version). */
  version: string;
  /** The namespace of the control plane (labels, the identity service's address). */
  controlPlaneNamespace: string;
  trustDomain: string;
  /** PEM of the trust anchor(s); written into the pod, see contract RECORD.trustAnchors. */
  trustAnchorsPem: string;
  /** `https://host:port` of the identity service, as pods reach it. */
  identityUrl: string;
  /** `https://host:port` of the destination service (discovery); absent: proxies go to original destinations. */
  destinationUrl?: string;
  /** Native sidecars (an init container with restartPolicy Always) unless a pod says otherwise. */
  nativeSidecar: boolean;
  /** Who injects: recorded in mesh.io/injected-by. */
  injectedBy: 'webhook' | 'cli';
}

export const IDENTITY_PORT = 8080;

/** The identity service as pods reach it: its Service's cluster DNS name. */
export function identityServiceUrl(namespace: string, clusterDomain = 'cluster.local'): string {
  return `https://mesh-identity.${namespace}.svc.${clusterDomain}:${IDENTITY_PORT}`;
}

/** The destination service as pods reach it: its Service's cluster DNS name (Linkerd's port). */
export function destinationServiceUrl(namespace: string, clusterDomain = 'cluster.local'): string {
  return `https://mesh-destination.${namespace}.svc.${clusterDomain}:${DESTINATION_PORT}`;
}
