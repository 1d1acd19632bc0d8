// The destination service's own name: a workload like the identity service,
// with its own service account in the control-plane namespace.
import { identityName } from '../../ca/identity.js';
import { CONTROL_PLANE_NAMESPACE } from '../identity/names.js';

export const DESTINATION_SERVICE_ACCOUNT = 'mesh-destination';

/** `mesh-destination.mesh.serviceaccount.identity.<trust-domain>` */
export function destinationServerName(trustDomain: string): string {
  return identityName(DESTINATION_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE, trustDomain);
}
