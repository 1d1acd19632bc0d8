// Which proxies a tap names. A resource is written as operators write it for
// kubectl (`deploy/web`, `pod/web-1`, `ns/default`, `svc/api`, or a bare name
// for a deployment); a TargetSource answers it with the meshed pods behind it:
// where their proxy's tap port is and the identity that proxy must prove.
import { ApiError } from '../../shared/api.js';

export type ResourceKind = 'deployment' | 'pod' | 'namespace' | 'service';

export interface Resource {
  kind: ResourceKind;
  /** Empty for a namespace given as `ns/NAME`: the namespace is the name. */
  name: string;
  namespace: string;
}

export interface TapTarget {
  pod: string;
  namespace: string;
  /** The pod's IP: its proxy's tap port is there. */
  address: string;
  /** The identity its proxy proves; the tap service verifies it. */
  identity: string;
}

/** A pod of a resource, meshed or not (stat counts both: MESHED 1/2). */
export interface PodInfo {
  pod: string;
  namespace: string;
  address: string;
  /** Present when the pod runs a mesh proxy. */
  identity?: string;
  /** The deployment it belongs to (stat's rows). */
  deployment: string;
}

export interface TargetSource {
  /** The meshed pods of a resource (none: an empty list, not an error). */
  targets(r: Resource): Promise<TapTarget[]>;
  /** Every address of a resource's pods (for --to), meshed or not. */
  addresses(r: Resource): Promise<string[]>;
  /** Every pod of a resource; a kind with an empty name means all of that kind in the namespace. */
  pods(r: Resource): Promise<PodInfo[]>;
}

const KINDS: Record<string, ResourceKind> = {
  deploy: 'deployment',
  deployment: 'deployment',
  deployments: 'deployment',
  po: 'pod',
  pod: 'pod',
  pods: 'pod',
  ns: 'namespace',
  namespace: 'namespace',
  namespaces: 'namespace',
  svc: 'service',
  service: 'service',
  services: 'service',
};

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** `deploy/web` in namespace `default` → { deployment, web, default }; a bad one is a 400 naming what is wrong. */
export function parseResource(text: string, namespace = 'default'): Resource {
  const slash = text.indexOf('/');
  const kindText = slash < 0 ? 'deploy' : text.slice(0, slash).toLowerCase();
  const bareKind = slash < 0 && KINDS[text.toLowerCase()] !== undefined;
  // `deploy` alone (stat): every deployment of the namespace.
  const name = slash < 0 ? (bareKind ? '' : text) : text.slice(slash + 1);
  const kind = KINDS[slash < 0 && bareKind ? text.toLowerCase() : kindText];
  if (kind === undefined) throw new ApiError(400, 'MESH_TAP_RESOURCE', `unknown resource type "${kindText}" in "${text}": use deploy/, pod/, ns/ or svc/`);
  if (name !== '' && !NAME.test(name)) throw new ApiError(400, 'MESH_TAP_RESOURCE', `"${name}" is not a resource name`);
  if (name === '' && kind === 'namespace') throw new ApiError(400, 'MESH_TAP_RESOURCE', 'ns/ needs a namespace name');
  if (!NAME.test(namespace)) throw new ApiError(400, 'MESH_TAP_RESOURCE', `"${namespace}" is not a namespace name`);
  return kind === 'namespace' ? { kind, name, namespace: name } : { kind, name, namespace };
}

export function formatResource(r: Resource): string {
  const short = { deployment: 'deploy', pod: 'pod', namespace: 'ns', service: 'svc' }[r.kind];
  if (r.kind === 'namespace') return `ns/${r.name}`;
  return r.name === '' ? `every ${r.kind} in ${r.namespace}` : `${short}/${r.name} in ${r.namespace}`;
}
