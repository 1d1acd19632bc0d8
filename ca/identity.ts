// Workload identity names, Linkerd's shape:
//   <serviceaccount>.<namespace>.serviceaccount.identity.<trust-domain>
// The name is the leaf's only DNS SAN and what TLS peers check, so it must be a
// valid DNS name with exactly one spelling: lowercase labels only.
import { CaError } from './errors.js';

export interface WorkloadIdentity {
  serviceAccount: string;
  namespace: string;
  trustDomain: string;
}

export interface ServiceAccount {
  namespace: string;
  serviceAccount: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_NAME = 253;
const MIDDLE = 'serviceaccount.identity';

export function isDnsLabel(s: string): boolean {
  return LABEL.test(s);
}

function checkLabel(value: string, what: string): void {
  if (!isDnsLabel(value)) {
    throw new CaError(
      'MESH_CA_BAD_IDENTITY',
      `${what} "${value}" is not a DNS label (1-63 of a-z, 0-9, "-"; starting and ending with a letter or digit)`,
    );
  }
}

export function checkTrustDomain(trustDomain: string): void {
  const labels = trustDomain.split('.');
  if (trustDomain.length > MAX_NAME || labels.some((l) => !isDnsLabel(l))) {
    throw new CaError('MESH_CA_BAD_IDENTITY', `trust domain "${trustDomain}" is not a lowercase DNS name (e.g. cluster.local)`);
  }
}

export function identityName(serviceAccount: string, namespace: string, trustDomain: string): string {
  // Kubernetes allows dots in service-account names; we do not, or the name
  // could be read back two ways.
  checkLabel(serviceAccount, 'service account');
  checkLabel(namespace, 'namespace');
  checkTrustDomain(trustDomain);
  const name = `${serviceAccount}.${namespace}.${MIDDLE}.${trustDomain}`;
  if (name.length > MAX_NAME) {
    throw new CaError('MESH_CA_BAD_IDENTITY', `identity "${name}" is longer than a DNS name may be (${MAX_NAME})`);
  }
  return name;
}

export function parseIdentityName(name: string): WorkloadIdentity {
  const labels = name.split('.');
  if (name.length > MAX_NAME || labels.length < 5 || labels[2] !== 'serviceaccount' || labels[3] !== 'identity') {
    throw new CaError(
      'MESH_CA_BAD_IDENTITY',
      `"${name}" is not an identity name (<serviceaccount>.<namespace>.${MIDDLE}.<trust-domain>)`,
    );
  }
  const [serviceAccount, namespace] = labels as [string, string];
  const trustDomain = labels.slice(4).join('.');
  checkLabel(serviceAccount, 'service account');
  checkLabel(namespace, 'namespace');
  checkTrustDomain(trustDomain);
  return { serviceAccount, namespace, trustDomain };
}

/** The service account of a Kubernetes token subject, `system:serviceaccount:<ns>:<sa>`. */
export function serviceAccountOf(tokenSubject: string): ServiceAccount {
  const parts = tokenSubject.split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount') {
    throw new CaError('MESH_CA_BAD_IDENTITY', `token subject "${tokenSubject}" is not system:serviceaccount:<namespace>:<name>`);
  }
  const [, , namespace, serviceAccount] = parts as [string, string, string, string];
  checkLabel(namespace, 'namespace');
  checkLabel(serviceAccount, 'service account');
  return { namespace, serviceAccount };
}

export function tokenSubject(namespace: string, serviceAccount: string): string {
  checkLabel(namespace, 'namespace');
  checkLabel(serviceAccount, 'service account');
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}
