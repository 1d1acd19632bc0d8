// The annotations and labels that drive injection (Linkerd's names under our
// domain: `linkerd.io/inject` → `mesh.io/inject`, `config.linkerd.io/*` →
// `config.mesh.io/*`). Read by the injector, written by `mesh inject` and
// `mesh install`, looked for by `mesh check`.

/** `enabled` or `disabled`, on a pod (template) or its namespace; the pod's wins. */
export const INJECT = 'mesh.io/inject';
export type InjectValue = 'enabled' | 'disabled';

/** Namespace label: `disabled` keeps the webhook away from the whole namespace. */
export const ADMISSION_WEBHOOKS_LABEL = 'config.mesh.io/admission-webhooks';

/** Per-pod settings; a namespace's value applies to pods that do not set their own. */
export const CONFIG = {
  skipInboundPorts: 'config.mesh.io/skip-inbound-ports',
  skipOutboundPorts: 'config.mesh.io/skip-outbound-ports',
  skipSubnets: 'config.mesh.io/skip-subnets',
  interceptionMode: 'config.mesh.io/interception-mode',
  opaquePorts: 'config.mesh.io/opaque-ports',
  proxyCpuRequest: 'config.mesh.io/proxy-cpu-request',
  proxyCpuLimit: 'config.mesh.io/proxy-cpu-limit',
  proxyMemoryRequest: 'config.mesh.io/proxy-memory-request',
  proxyMemoryLimit: 'config.mesh.io/proxy-memory-limit',
  proxyLogLevel: 'config.mesh.io/proxy-log-level',
  nativeSidecar: 'config.mesh.io/native-sidecar',
} as const;
export type ConfigAnnotation = (typeof CONFIG)[keyof typeof CONFIG];
export const CONFIG_ANNOTATIONS: readonly ConfigAnnotation[] = Object.values(CONFIG);

/** Written by the injector: what was injected, by which version, so a second pass knows. */
export const RECORD = {
  proxyVersion: 'mesh.io/proxy-version',
  /** `webhook` or `cli`. */
  injectedBy: 'mesh.io/injected-by',
  /** The sidecar's shape: `mesh-init,mesh-proxy` or `mesh-init,mesh-proxy(native)`. */
  injected: 'mesh.io/injected',
  /** The trust anchors PEM; the projected identity volume turns it into a file for the proxy. */
  trustAnchors: 'mesh.io/identity-trust-anchors',
} as const;

/** Pod label: which control plane meshes it (found by `mesh check --proxy`). */
export const CONTROL_PLANE_NS_LABEL = 'mesh.io/control-plane-ns';
/** Label on the control plane's own objects. */
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
