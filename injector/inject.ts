// The injector as one library call, shared by the webhook and `mesh inject
// --manual`: a pod (or pod template) and its namespace in, a decision and the
// JSON Patch that carries it out.
//   decide (mesh.io/inject) → read settings (config.mesh.io/*) → render sidecar → patch
import { CONTROL_PLANE_NS_LABEL, RECORD } from '../contract/annotations.js';
import { SIDECAR } from '../contract/sidecar.js';
import type { InjectorConfig } from './config.js';
import { decide, type Decision, type NamespaceInfo } from './decide.js';
import { pointer, type PatchOperation } from './patch.js';
import { namedPorts, stringMap, type PodLike } from './pod.js';
import { readSettings, type Problem, type SidecarSettings } from './settings.js';
import { renderSidecar, type Sidecar } from './sidecar.js';

export type InjectResult =
  | { kind: 'injected'; patch: PatchOperation[]; settings: SidecarSettings; native: boolean }
  | Exclude<Decision, { kind: 'inject' }>;

export interface InjectOptions {
  /** Inject even without mesh.io/inject: enabled (mesh inject --manual). */
  force?: boolean;
}

export function inject(pod: PodLike, namespace: NamespaceInfo | undefined, config: InjectorConfig, o: InjectOptions = {}): InjectResult {
  const decision = decide(pod, namespace, o.force);
  if (decision.kind !== 'inject') return decision;
  const read = readSettings({ pod: stringMap(pod.metadata?.annotations), namespace: namespace?.annotations ?? {} }, namedPorts(pod));
  if (!read.ok) return { kind: 'invalid', problems: read.problems };
  const sidecar = renderSidecar(read.settings, config);
  const native = sidecar.containers.length === 0;
  return { kind: 'injected', patch: patchFor(pod, sidecar, recordAnnotations(read.settings, config, native), config), settings: read.settings, native };
}

function recordAnnotations(_s: SidecarSettings, c: InjectorConfig, native: boolean): Record<string, string> {
  return {
    [RECORD.proxyVersion]: c.version,
    [RECORD.injectedBy]: c.injectedBy,
    [RECORD.injected]: native ? `${SIDECAR.initContainer},${SIDECAR.proxyContainer}(native)` : `${SIDECAR.initContainer},${SIDECAR.proxyContainer}`,
    [RECORD.trustAnchors]: c.trustAnchorsPem,
  };
}

/** Adds `items` in front of the list at `path` (or creates it), keeping their order. */
function prepend(ops: PatchOperation[], present: unknown, path: string[], items: readonly unknown[]): void {
  if (items.length === 0) return;
  if (!Array.isArray(present)) return void ops.push({ op: 'add', path: pointer(path), value: items });
  items.forEach((item, i) => ops.push({ op: 'add', path: pointer([...path, i]), value: item }));
}

function patchFor(pod: PodLike, sidecar: Sidecar, annotations: Record<string, string>, c: InjectorConfig): PatchOperation[] {
  const ops: PatchOperation[] = [];
  const spec = pod.spec ?? {};
  if (pod.spec === undefined) ops.push({ op: 'add', path: '/spec', value: {} });
  // mesh-init first of all init containers: an app's own init container that
  // dials out must already be meshed (native), or at least run under the rules.
  prepend(ops, spec.initContainers, ['spec', 'initContainers'], sidecar.initContainers);
  // The proxy first among containers: kubelet starts them in order and waits
  // for its postStart hook (mesh-await) before starting the app.
  prepend(ops, spec.containers, ['spec', 'containers'], sidecar.containers);
  if (Array.isArray(spec.volumes)) for (const v of sidecar.volumes) ops.push({ op: 'add', path: '/spec/volumes/-', value: v });
  else ops.push({ op: 'add', path: '/spec/volumes', value: sidecar.volumes });

  const meta = pod.metadata;
  if (meta === undefined) {
    ops.push({ op: 'add', path: '/metadata', value: { annotations, labels: { [CONTROL_PLANE_NS_LABEL]: c.controlPlaneNamespace } } });
    return ops;
  }
  for (const [field, values] of [['annotations', annotations], ['labels', { [CONTROL_PLANE_NS_LABEL]: c.controlPlaneNamespace }]] as const) {
    if (typeof meta[field] !== 'object' || meta[field] === null) ops.push({ op: 'add', path: pointer(['metadata', field]), value: values });
    else for (const [k, v] of Object.entries(values)) ops.push({ op: 'add', path: pointer(['metadata', field, k]), value: v });
  }
  return ops;
}

/** One line naming every bad annotation: the AdmissionResponse warning and the CLI's summary. */
export function describeProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.annotation}=${JSON.stringify(p.value)} (${p.from}): ${p.reason}`).join('; ');
}
