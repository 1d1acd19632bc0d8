// Whether a pod gets the sidecar: the rules of `mesh.io/inject` in one
// exhaustive decision, before any annotation is parsed for its settings.
import { ADMISSION_WEBHOOKS_LABEL, INJECT, RECORD } from '../contract/annotations.js';
import { SIDECAR } from '../contract/sidecar.js';
import { containersOf, stringMap, type PodLike } from './pod.js';
import type { Problem } from './settings.js';

/** The pod's namespace as the injector sees it; undefined when unknown (manual injection of a template). */
export interface NamespaceInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export type SkipReason =
  | 'kube-system'
  | 'namespace-opted-out'
  | 'already-injected'
  | 'host-network'
  | 'disabled-on-pod'
  | 'not-enabled';

export type Decision =
  | { kind: 'inject'; from: 'pod' | 'namespace' | 'forced' }
  | { kind: 'skip'; reason: SkipReason; message: string }
  | { kind: 'invalid'; problems: Problem[] };

/** kube-system runs the cluster itself (DNS, CNI, kube-proxy): meshing it could cut the cluster off from itself. */
const NEVER = new Set(['kube-system']);

export function alreadyInjected(pod: PodLike): boolean {
  const names = containersOf(pod).map((c) => c.name);
  return names.includes(SIDECAR.proxyContainer) || names.includes(SIDECAR.initContainer) || stringMap(pod.metadata?.annotations)[RECORD.proxyVersion] !== undefined;
}

/** `force`: `mesh inject --manual` injects what it is given, annotated or not (the user asked). */
export function decide(pod: PodLike, namespace: NamespaceInfo | undefined, force = false): Decision {
  if (namespace !== undefined && NEVER.has(namespace.name)) {
    return { kind: 'skip', reason: 'kube-system', message: `namespace ${namespace.name} is never injected` };
  }
  if (namespace?.labels[ADMISSION_WEBHOOKS_LABEL] === 'disabled') {
    return { kind: 'skip', reason: 'namespace-opted-out', message: `namespace ${namespace.name} is labelled ${ADMISSION_WEBHOOKS_LABEL}=disabled` };
  }
  if (alreadyInjected(pod)) return { kind: 'skip', reason: 'already-injected', message: 'already injected' };
  // The init container's iptables rules would be the node's own: never.
  if (pod.spec?.hostNetwork === true) return { kind: 'skip', reason: 'host-network', message: 'uses the host network' };

  const onPod = stringMap(pod.metadata?.annotations)[INJECT];
  const onNamespace = namespace?.annotations[INJECT];
  const bad = (value: string, from: 'pod' | 'namespace'): Decision => ({
    kind: 'invalid',
    problems: [{ annotation: INJECT, value, from, reason: 'not one of enabled, disabled' }],
  });
  if (onPod !== undefined && onPod !== 'enabled' && onPod !== 'disabled') return bad(onPod, 'pod');
  if (onPod === 'disabled') return { kind: 'skip', reason: 'disabled-on-pod', message: `${INJECT}: disabled` };
  if (onPod === 'enabled') return { kind: 'inject', from: 'pod' };
  if (force) return { kind: 'inject', from: 'forced' };
  if (onNamespace !== undefined && onNamespace !== 'enabled' && onNamespace !== 'disabled') return bad(onNamespace, 'namespace');
  if (onNamespace === 'enabled') return { kind: 'inject', from: 'namespace' };
  return { kind: 'skip', reason: 'not-enabled', message: `neither the pod nor its namespace has ${INJECT}: enabled` };
}
