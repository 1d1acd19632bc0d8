// Where the identity service's own Kubernetes credentials come from, decided in
// one place and before anything heavy loads. controller-runtime's order:
// --kubeconfig, then KUBECONFIG (a controller run outside the cluster), then
// the pod's mounted service account. No fallback to ~/.kube/config: a
// controller that quietly borrowed an operator's admin context would surprise.
import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';

/** Where kubelet mounts a pod's service-account token, the cluster CA and the namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubernetesCredentials =
  | { kind: 'kubeconfig'; paths: string[]; from: '--kubeconfig' | 'KUBECONFIG' }
  | { kind: 'in-cluster'; server: string; tokenFile: string; caFile: string }
  | { kind: 'none'; reason: string };

export type FoundCredentials = Exclude<KubernetesCredentials, { kind: 'none' }>;

export interface FindCredentialsOptions {
  /** --kubeconfig. */
  kubeconfig?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Prefix of the in-cluster files, for tests; none in a pod. */
  root?: string;
}

/** Credentials that were found but cannot be used (a kubeconfig that does not parse, names no cluster). */
export class KubernetesCredentialsError extends Error {
  readonly code = 'MESH_IDENTITY_KUBERNETES_CREDENTIALS';
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesCredentialsError';
  }
}

export function findKubernetesCredentials(o: FindCredentialsOptions = {}): KubernetesCredentials {
  const env = o.env ?? process.env;
  if (o.kubeconfig !== undefined && o.kubeconfig !== '') {
    return existsSync(o.kubeconfig)
      ? { kind: 'kubeconfig', paths: [o.kubeconfig], from: '--kubeconfig' }
      : { kind: 'none', reason: `--kubeconfig ${o.kubeconfig}: no such file` };
  }
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (listed.length > 0) {
    // kubectl's reading of the list: files that do not exist are skipped.
    const paths = listed.filter((p) => existsSync(p));
    return paths.length > 0 ? { kind: 'kubeconfig', paths, from: 'KUBECONFIG' } : { kind: 'none', reason: `KUBECONFIG=${env.KUBECONFIG}: no such file` };
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    return { kind: 'none', reason: 'no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST/PORT unset), and neither --kubeconfig nor KUBECONFIG given' };
  }
  const dir = join(o.root ?? '', SERVICE_ACCOUNT_DIR);
  const tokenFile = join(dir, 'token');
  const caFile = join(dir, 'ca.crt');
  for (const file of [tokenFile, caFile]) {
    if (!existsSync(file)) {
      return { kind: 'none', reason: `in a pod (KUBERNETES_SERVICE_HOST is set) but ${file} is missing: is automountServiceAccountToken off for the identity service?` };
    }
  }
  return { kind: 'in-cluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, tokenFile, caFile };
}
