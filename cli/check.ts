// `mesh check`: after `mesh install | kubectl apply -f -`, is the mesh working?
// `--pre`: before install, can it be installed (API, nothing installed yet, one
// SelfSubjectAccessReview per kind install creates)? `--proxy`: the meshed pods only.
// kubectl-style lines by category (√ passed, × failed with a hint under it),
// or -o json in linkerd check's shape. Exit 0: all passed; 1: a check failed;
// 2: the flags or the kubeconfig cannot be used, or the API server does not answer.
import { Command, Option } from 'commander';
import { createKubeClient, type KubeClient } from '../shared/kubernetes/client.js';
import { findKubernetesCredentials, KubernetesCredentialsError } from '../shared/kubernetes/credentials.js';
import { ApiUnreachable, checkCluster, checkPreInstall, checkProxies, type Category } from './check-cluster.js';
import { EXIT_BAD_INPUT, EXIT_FAILED, processOut, reportFailure, UsageError, type Out } from './command.js';
import type { Output } from './output.js';
import { meshVersion } from './version.js';

export type CheckMode = 'all' | 'pre' | 'proxy';

export interface CheckOptions {
  namespace: string;
  output: Output;
  /** all (default): after install; pre: before install; proxy: the data plane only. */
  mode?: CheckMode;
  /** With mode proxy: only this namespace's pods. */
  proxyNamespace?: string;
}

export interface CheckDeps {
  client(): Promise<KubeClient>;
  now(): Date;
}

const UNREACHABLE = 'can reach the Kubernetes API server';

export function formatText(categories: readonly Category[]): string {
  const lines: string[] = [];
  for (const c of categories) {
    lines.push(c.name, '-'.repeat(c.name.length));
    for (const check of c.checks) {
      if (check.result.ok) lines.push(`√ ${check.name}`);
      else lines.push(`× ${check.name}`, `    ${check.result.error}`, `    hint: ${check.result.hint}`);
    }
    lines.push('');
  }
  const ok = categories.every((c) => c.checks.every((k) => k.result.ok));
  lines.push(`Status check results are ${ok ? '√' : '×'}`);
  return lines.join('\n') + '\n';
}

/** linkerd check -o json's shape, so the same scripts read both. */
export function formatJson(categories: readonly Category[]): string {
  const success = categories.every((c) => c.checks.every((k) => k.result.ok));
  return JSON.stringify({
    success,
    categories: categories.map((c) => ({
      categoryName: c.name,
      checks: c.checks.map((k) => (k.result.ok ? { description: k.name, result: 'success' } : { description: k.name, hint: k.result.hint, error: k.result.error, result: 'error' })),
    })),
  }, null, 2) + '\n';
}

export async function runCheck(o: CheckOptions, deps: CheckDeps, out: Out): Promise<number> {
  let categories: Category[];
  let code: number;
  try {
    const client = await deps.client();
    try {
      const ctx = { client, namespace: o.namespace, now: deps.now(), ...(o.proxyNamespace === undefined ? {} : { proxyNamespace: o.proxyNamespace }) };
      const mode = o.mode ?? 'all';
      categories = await (mode === 'pre' ? checkPreInstall(ctx) : mode === 'proxy' ? checkProxies(ctx) : checkCluster(ctx));
      code = categories.every((c) => c.checks.every((k) => k.result.ok)) ? 0 : EXIT_FAILED;
    } catch (e) {
      if (!(e instanceof ApiUnreachable)) throw e;
      // Nothing else can be judged; say so as a failed check, exit as for a config that cannot be used.
      categories = [{ name: 'kubernetes-api', checks: [{ name: UNREACHABLE, result: { ok: false, error: e.message, hint: `is the cluster up? kubectl --server ${client.server} version` } }] }];
      code = EXIT_BAD_INPUT;
    }
  } catch (e) {
    return reportFailure('mesh check', e, out);
  }
  out.stdout(o.output === 'json' ? formatJson(categories) : formatText(categories));
  return code;
}

/** The client for --kubeconfig/--context (else KUBECONFIG, else in-cluster); credentials that cannot be used are a UsageError. */
export async function kubeClientFor(f: { kubeconfig?: string; context?: string }, env: NodeJS.ProcessEnv = process.env): Promise<KubeClient> {
  const credentials = findKubernetesCredentials({ kubeconfig: f.kubeconfig, env });
  if (credentials.kind === 'none') throw new UsageError(credentials.reason);
  try {
    return await createKubeClient({ credentials, ...(f.context === undefined ? {} : { context: f.context }), userAgent: `mesh-check/${meshVersion}`, timeoutMs: 5_000 });
  } catch (e) {
    // A kubeconfig that does not parse or names no cluster: the invocation must change.
    if (e instanceof KubernetesCredentialsError) throw new UsageError(e.message);
    throw e;
  }
}

interface Flags {
  kubeconfig?: string;
  context?: string;
  namespace: string;
  output: Output;
  pre?: boolean;
  proxy?: boolean;
  proxyNamespace?: string;
}

const NAMESPACE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkCommand(out: Out = processOut): Command {
  return new Command('check')
    .description('Check that the control plane and the meshed pods are healthy (after mesh install | kubectl apply -f -); --pre: that it can be installed; --proxy: the meshed pods only')
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('--namespace <ns>', 'control-plane namespace', 'mesh')
    .option('--pre', 'before install: API, no control plane yet, permissions to create what mesh install renders')
    .option('--proxy', 'the data-plane checks only: every meshed pod\'s proxy ready (certified)')
    .option('--proxy-namespace <ns>', 'with --proxy: only the pods of this namespace (default: every namespace)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .exitOverride()
    .action(async (f: Flags) => {
      const usage = (message: string): void => void (process.exitCode = reportFailure('mesh check', new UsageError(message), out));
      if (!NAMESPACE_NAME.test(f.namespace)) return usage(`--namespace: "${f.namespace}" is not a Kubernetes namespace name`);
      if (f.pre === true && f.proxy === true) return usage('--pre and --proxy cannot be given together');
      if (f.proxyNamespace !== undefined && f.proxy !== true) return usage('--proxy-namespace needs --proxy');
      if (f.proxyNamespace !== undefined && !NAMESPACE_NAME.test(f.proxyNamespace)) return usage(`--proxy-namespace: "${f.proxyNamespace}" is not a Kubernetes namespace name`);
      const deps: CheckDeps = { now: () => new Date(), client: () => kubeClientFor(f) };
      const mode: CheckMode = f.pre === true ? 'pre' : f.proxy === true ? 'proxy' : 'all';
      process.exitCode = await runCheck({ namespace: f.namespace, output: f.output, mode, ...(f.proxyNamespace === undefined ? {} : { proxyNamespace: f.proxyNamespace }) }, deps, out);
    });
}
