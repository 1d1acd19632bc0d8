// Test helper: an object as the API server would judge it. First the upstream
// OpenAPI schema (kubernetes-models: types, required fields, enums, quantity
// formats; it has no additionalProperties, so unknown fields are caught at
// compile time by typing what we render with its interfaces), then the API
// server's own validation rules the schema does not carry and that an
// injected pod could break: unique container, port and volume names, ports in
// range, mounts of volumes that exist, env references to earlier variables.
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as admissionregistration from 'kubernetes-models/admissionregistration.k8s.io/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as core from 'kubernetes-models/v1';

type Model = { validate(): void };
type ModelClass = new (data: never) => Model;

const MODELS: Record<string, ModelClass> = {
  'v1/Pod': core.Pod as unknown as ModelClass,
  'v1/Namespace': core.Namespace as unknown as ModelClass,
  'v1/Service': core.Service as unknown as ModelClass,
  'v1/ServiceAccount': core.ServiceAccount as unknown as ModelClass,
  'v1/Secret': core.Secret as unknown as ModelClass,
  'v1/ConfigMap': core.ConfigMap as unknown as ModelClass,
  'apps/v1/Deployment': apps.Deployment as unknown as ModelClass,
  'apps/v1/StatefulSet': apps.StatefulSet as unknown as ModelClass,
  'apps/v1/DaemonSet': apps.DaemonSet as unknown as ModelClass,
  'apps/v1/ReplicaSet': apps.ReplicaSet as unknown as ModelClass,
  'batch/v1/Job': batch.Job as unknown as ModelClass,
  'batch/v1/CronJob': batch.CronJob as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/ClusterRole': rbac.ClusterRole as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': rbac.ClusterRoleBinding as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/Role': rbac.Role as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/RoleBinding': rbac.RoleBinding as unknown as ModelClass,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': admissionregistration.MutatingWebhookConfiguration as unknown as ModelClass,
};

interface Obj {
  apiVersion?: string;
  kind?: string;
  [k: string]: unknown;
}

/** Every problem found, as "path: message"; empty when the object is valid. */
export function schemaProblems(object: unknown): string[] {
  const o = object as Obj;
  const key = `${o.apiVersion}/${o.kind}`;
  // A List is kubectl's envelope, not an API type: its items are what the API server sees.
  if (key === 'v1/List') return ((o.items as unknown[]) ?? []).flatMap(schemaProblems);
  const Model = MODELS[key];
  if (Model === undefined) return [`no schema known for ${key}`];
  const problems: string[] = [];
  try {
    new Model(o as never).validate();
  } catch (e) {
    problems.push(`${key}: ${(e as Error).message}`);
  }
  const spec = podSpecOf(o);
  if (spec !== undefined) problems.push(...podSpecProblems(spec));
  return problems;
}

export function assertValid(object: unknown): void {
  const problems = schemaProblems(object);
  if (problems.length > 0) throw new Error(`invalid ${(object as Obj).kind}:\n  ${problems.join('\n  ')}`);
}

function podSpecOf(o: Obj): Record<string, unknown> | undefined {
  const spec = o.spec as Record<string, any> | undefined;
  switch (o.kind) {
    case 'Pod':
      return spec;
    case 'CronJob':
      return spec?.jobTemplate?.spec?.template?.spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return spec?.template?.spec;
    default:
      return undefined;
  }
}

interface C {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  env?: { name: string; value?: string }[];
  restartPolicy?: string;
  startupProbe?: unknown;
  lifecycle?: unknown;
}

function podSpecProblems(spec: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const init = (spec.initContainers as C[] | undefined) ?? [];
  const containers = (spec.containers as C[] | undefined) ?? [];
  const volumes = new Set<string>();
  for (const v of (spec.volumes as { name: string }[] | undefined) ?? []) {
    if (volumes.has(v.name)) problems.push(`volume name ${v.name} is not unique`);
    volumes.add(v.name);
  }
  const names = new Set<string>();
  const portNames = new Set<string>();
  for (const [where, list] of [['initContainers', init], ['containers', containers]] as const) {
    for (const c of list) {
      if (names.has(c.name)) problems.push(`container name ${c.name} is not unique`);
      names.add(c.name);
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(c.name)) problems.push(`${c.name}: not a DNS-1123 label`);
      // Only init containers may have a restartPolicy (Always: a native sidecar).
      if (c.restartPolicy !== undefined && (where === 'containers' || c.restartPolicy !== 'Always')) problems.push(`${where}/${c.name}: restartPolicy ${c.restartPolicy} not allowed here`);
      if (where === 'initContainers' && c.restartPolicy !== 'Always' && (c.startupProbe !== undefined || c.lifecycle !== undefined)) {
        problems.push(`initContainers/${c.name}: probes and lifecycle only on native sidecars`);
      }
      for (const p of c.ports ?? []) {
        if (!(p.containerPort >= 1 && p.containerPort <= 65535)) problems.push(`${c.name}: port ${p.containerPort} out of range`);
        if (p.name !== undefined) {
          if (p.name.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || !/[a-z]/.test(p.name)) problems.push(`${c.name}: port name ${p.name} is not an IANA_SVC_NAME`);
          if (portNames.has(p.name)) problems.push(`port name ${p.name} is not unique in the pod`);
          portNames.add(p.name);
        }
      }
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problems.push(`${c.name}: mounts volume ${m.name}, which the pod does not have`);
      const defined = new Set<string>();
      for (const e of c.env ?? []) {
        for (const ref of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!defined.has(ref[1]!)) problems.push(`${c.name}: env ${e.name} refers to $(${ref[1]}) before it is defined`);
        }
        defined.add(e.name);
      }
    }
  }
  return problems;
}
