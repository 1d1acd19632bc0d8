// The identity service's own name, in a module of its own: the proxy needs it
// at start-up, without loading the certificate machinery (pkijs) it may not use.
import { identityName } from '../../ca/identity.js';

// Linkerd's shape: the identity service is a workload like any other, with the
// service account `linkerd-identity` in the control-plane namespace; so the name
// is an ordinary identity name, issued and checked by the same code as every leaf.
export const IDENTITY_SERVICE_ACCOUNT = 'mesh-identity';
export const CONTROL_PLANE_NAMESPACE = 'mesh';

/** `mesh-identity.mesh.serviceaccount.identity.<trust-domain>` */
export function identityServerName(trustDomain: string): string {
  return identityName(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE, trustDomain);
}
