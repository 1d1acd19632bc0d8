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

export interface TargetSource {
  /** The meshed pods of a resource (none: an empty list, not an error). */
  targets(r: Resource): Promise<TapTarget[]>;
  /** Every address of a resource's pods (for --to), meshed or not. */
  addresses(r: Resource): Promise<string[]>;
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
  const name = slash < 0 ? text : text.slice(slash + 1);
  const kind = KINDS[kindText];
  if (kind === undefined) throw new ApiError(400, 'MESH_TAP_RESOURCE', `unknown resource type "${kindText}" in "${text}": use deploy/, pod/, ns/ or svc/`);
  if (!NAME.test(name)) throw new ApiError(400, 'MESH_TAP_RESOURCE', `"${name}" is not a resource name`);
  if (!NAME.test(namespace)) throw new ApiError(400, 'MESH_TAP_RESOURCE', `"${namespace}" is not a namespace name`);
  return kind === 'namespace' ? { kind, name, namespace: name } : { kind, name, namespace };
}

export function formatResource(r: Resource): string {
  const short = { deployment: 'deploy', pod: 'pod', namespace: 'ns', service: 'svc' }[r.kind];
  return r.kind === 'namespace' ? `ns/${r.name}` : `${short}/${r.name} in ${r.namespace}`;
}
