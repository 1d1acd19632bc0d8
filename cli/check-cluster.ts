// The checks `mesh check` runs against a cluster, by category, in the order an
// operator would fix them: reach the API, find the control plane, trust its
// CA, trust its webhook, then look at the meshed pods. Each check reads only
// what it names; a category whose prerequisite failed still runs, so one run
// shows everything that is wrong.
import { X509Certificate } from 'node:crypto';
import { certificatesFromPem, validateIssuer } from '../ca/index.js';
import { COMPONENT_LABEL, PART_OF_LABEL } from '../contract/annotations.js';
import { SIDECAR } from '../contract/sidecar.js';
import { KubeRequestError, type KubeClient } from '../shared/kubernetes/client.js';
import { ISSUER_SECRET, TRUST_ROOTS_CONFIGMAP } from './identity-manifests.js';
import { IDENTITY, INJECTOR, INJECTOR_TLS_SECRET, WEBHOOK_CONFIGURATION, injectorServiceName } from './install-objects.js';

/** Issuer certificates must outlive this, so the operator has time to rotate (linkerd's rule too). */
export const ISSUER_MIN_REMAINING_DAYS = 60;
/** Native sidecars (the injector's default) need 1.29. */
export const MIN_KUBERNETES = { major: 1, minor: 29 } as const;

export type CheckResult = { ok: true } | { ok: false; error: string; hint: string };
export interface Check { name: string; result: CheckResult }
export interface Category { name: 'kubernetes-api' | 'pre-install' | 'permissions' | 'control-plane' | 'identity' | 'webhook' | 'data-plane'; checks: Check[] }

export interface CheckContext {
  client: KubeClient;
  namespace: string;
  now: Date;
  /** --proxy-namespace: the data-plane checks look at this namespace's pods only (default: every namespace). */
  proxyNamespace?: string;
}

/** The API server could not be reached at all: nothing else can be checked. */
export class ApiUnreachable extends Error {
  readonly code = 'MESH_CHECK_UNREACHABLE';
}

const pass: CheckResult = { ok: true };
const fail = (error: string, hint: string): CheckResult => ({ ok: false, error, hint });

type Obj = Record<string, any>;

/** The API server's answer; no answer at all is ApiUnreachable. */
async function answer<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof KubeRequestError && e.code === 'MESH_KUBE_UNREACHABLE') throw new ApiUnreachable(e.message, { cause: e });
    throw e;
  }
}

/** A GET that must answer 200; any other answer becomes the failure's message. */
async function get(ctx: CheckContext, path: string, what: string): Promise<{ ok: true; body: Obj } | { ok: false; result: CheckResult }> {
  const a = await answer(() => ctx.client.getJson(path));
  if (a.status === 200 && typeof a.body === 'object' && a.body !== null) return { ok: true, body: a.body as Obj };
  const message = (a.body as Obj | undefined)?.message ?? `HTTP ${a.status}`;
  const hint = a.status === 404 ? 'run mesh install | kubectl apply -f -' : a.status === 401 || a.status === 403 ? 'check the credentials and RBAC of the kubeconfig context' : 'see the API server\'s answer above';
  return { ok: false, result: fail(`${what}: ${message}`, hint) };
}

const decode = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');

async function kubernetesApi(ctx: CheckContext): Promise<Check[]> {
  const version = await get(ctx, '/version', 'GET /version');
  // /version is public; a namespaced read is what proves the credentials.
  const auth = await get(ctx, '/api/v1/namespaces/default', 'GET namespace default');
  let supported: CheckResult = version.ok ? pass : version.result;
  if (version.ok) {
    const major = Number.parseInt(String(version.body.major), 10);
    const minor = Number.parseInt(String(version.body.minor), 10);
    if (!(major > MIN_KUBERNETES.major || (major === MIN_KUBERNETES.major && minor >= MIN_KUBERNETES.minor))) {
      supported = fail(`the API server is ${String(version.body.gitVersion)}`, `mesh needs Kubernetes ${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor} or newer`);
    }
  }
  return [
    { name: 'can reach the Kubernetes API server', result: version.ok ? pass : version.result },
    { name: 'the credentials are accepted', result: auth.ok ? pass : auth.result },
    { name: 'the Kubernetes version is supported', result: supported },
  ];
}

function podReady(pod: Obj): boolean {
  return pod.status?.phase === 'Running' && (pod.status?.conditions ?? []).some((c: Obj) => c.type === 'Ready' && c.status === 'True');
}

async function controlPlane(ctx: CheckContext): Promise<Check[]> {
  const ns = await get(ctx, `/api/v1/namespaces/${ctx.namespace}`, `namespace ${ctx.namespace}`);
  const pods = await get(ctx, `/api/v1/namespaces/${ctx.namespace}/pods?labelSelector=${encodeURIComponent(`${PART_OF_LABEL}=mesh`)}`, 'control-plane pods');
  const component = (deployment: string, component: string): Check => {
    const name = `${deployment} pods are running and ready`;
    if (!pods.ok) return { name, result: pods.result };
    const mine = (pods.body.items ?? []).filter((p: Obj) => p.metadata?.labels?.[COMPONENT_LABEL] === component);
    if (mine.length === 0) return { name, result: fail(`no ${component} pod in namespace ${ctx.namespace}`, `kubectl -n ${ctx.namespace} describe deployment ${deployment}`) };
    const unready = mine.filter((p: Obj) => !podReady(p));
    if (unready.length === 0) return { name, result: pass };
    const states = unready.map((p: Obj) => `${p.metadata.name} (${p.status?.phase ?? 'Unknown'}, not ready)`).join(', ');
    return { name, result: fail(states, `kubectl -n ${ctx.namespace} describe pod ${unready[0].metadata.name}`) };
  };
  return [
    { name: 'the control-plane namespace exists', result: ns.ok ? pass : ns.result },
    component(IDENTITY, 'identity'),
    component(INJECTOR, 'injector'),
  ];
}

async function identity(ctx: CheckContext): Promise<Check[]> {
  const secret = await get(ctx, `/api/v1/namespaces/${ctx.namespace}/secrets/${ISSUER_SECRET}`, `secret ${ISSUER_SECRET}`);
  const roots = await get(ctx, `/api/v1/namespaces/${ctx.namespace}/configmaps/${TRUST_ROOTS_CONFIGMAP}`, `configmap ${TRUST_ROOTS_CONFIGMAP}`);
  const names = { valid: 'the issuer certificate is valid', expiry: `the issuer certificate is valid for at least ${ISSUER_MIN_REMAINING_DAYS} more days`, anchors: 'the trust anchors match the issuer' };
  if (!secret.ok) return [names.valid, names.expiry, names.anchors].map((name) => ({ name, result: secret.result }));
  const rotate = 'rotate it: mesh identity init (or your CA), then apply its Secret';
  let issuer: X509Certificate;
  try {
    issuer = new X509Certificate(certificatesFromPem(decode(secret.body.data?.['tls.crt']), `secret ${ISSUER_SECRET} tls.crt`)[0]!);
  } catch (e) {
    const result = fail((e as Error).message, rotate);
    return [names.valid, names.expiry, names.anchors].map((name) => ({ name, result }));
  }
  const notAfter = new Date(issuer.validTo);
  const notBefore = new Date(issuer.validFrom);
  const valid = ctx.now < notBefore || ctx.now > notAfter ? fail(`the issuer is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}`, rotate) : pass;
  const daysLeft = Math.floor((notAfter.getTime() - ctx.now.getTime()) / 86_400_000);
  const expiry = daysLeft < ISSUER_MIN_REMAINING_DAYS ? fail(`the issuer expires on ${notAfter.toISOString()} (in ${Math.max(daysLeft, 0)} days)`, rotate) : pass;
  let anchors: CheckResult = roots.ok ? pass : roots.result;
  if (roots.ok) {
    // The anchors proxies are given (the ConfigMap) must be the ones the issuer chains to.
    try {
      await validateIssuer({ anchorPem: String(roots.body.data?.['ca-bundle.crt'] ?? ''), issuerCertPem: decode(secret.body.data?.['tls.crt']), issuerKeyPem: decode(secret.body.data?.['tls.key']), now: ctx.now });
    } catch (e) {
      anchors = fail((e as Error).message, `the ConfigMap ${TRUST_ROOTS_CONFIGMAP} must hold the anchor that signed the issuer in ${ISSUER_SECRET}`);
    }
  }
  return [{ name: names.valid, result: valid }, { name: names.expiry, result: expiry }, { name: names.anchors, result: anchors }];
}

/** leaf → (intermediates in the chain) → one of the anchors, each link by name and signature, all valid now. */
function verifyChain(chain: X509Certificate[], anchors: X509Certificate[], now: Date): string | undefined {
  const all = [...chain, ...anchors];
  for (const c of all) if (now < new Date(c.validFrom) || now > new Date(c.validTo)) return `${c.subject.replace(/\n/g, ', ')} is not valid now (${c.validFrom} to ${c.validTo})`;
  let current = chain[0]!;
  for (let hops = 0; hops < chain.length + 1; hops++) {
    if (anchors.some((a) => current.checkIssued(a) && current.verify(a.publicKey))) return undefined;
    const next = chain.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
    if (next === undefined) break;
    current = next;
  }
  return `the serving certificate (${chain[0]!.subject.replace(/\n/g, ', ')}) does not chain to the caBundle (${anchors.map((a) => a.subject.replace(/\n/g, ', ')).join('; ')})`;
}

async function webhook(ctx: CheckContext): Promise<Check[]> {
  const config = await get(ctx, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIGURATION}`, `mutatingwebhookconfiguration ${WEBHOOK_CONFIGURATION}`);
  const names = { exists: 'the webhook configuration exists', ca: "the webhook's caBundle verifies the injector's serving certificate" };
  if (!config.ok) return [{ name: names.exists, result: config.result }, { name: names.ca, result: config.result }];
  const tls = await get(ctx, `/api/v1/namespaces/${ctx.namespace}/secrets/${INJECTOR_TLS_SECRET}`, `secret ${INJECTOR_TLS_SECRET}`);
  if (!tls.ok) return [{ name: names.exists, result: pass }, { name: names.ca, result: tls.result }];
  const hint = `re-run mesh install | kubectl apply -f - so the Secret ${INJECTOR_TLS_SECRET} and the caBundle come from one CA, then restart ${INJECTOR}`;
  let ca: CheckResult;
  try {
    const hook = (config.body.webhooks ?? [])[0] as Obj | undefined;
    const anchors = certificatesFromPem(decode(hook?.clientConfig?.caBundle), 'the caBundle').map((der) => new X509Certificate(der));
    const chain = certificatesFromPem(decode(tls.body.data?.['tls.crt']), `secret ${INJECTOR_TLS_SECRET} tls.crt`).map((der) => new X509Certificate(der));
    const host = injectorServiceName(ctx.namespace);
    const broken = verifyChain(chain, anchors, ctx.now) ?? (chain[0]!.checkHost(host) === undefined ? `the serving certificate is not for ${host}, the name the API server dials` : undefined);
    ca = broken === undefined ? pass : fail(broken, hint);
  } catch (e) {
    ca = fail((e as Error).message, hint);
  }
  return [{ name: names.exists, result: pass }, { name: names.ca, result: ca }];
}

async function dataPlane(ctx: CheckContext): Promise<Check[]> {
  const pods = ctx.proxyNamespace === undefined
    ? await get(ctx, '/api/v1/pods', 'pods in all namespaces')
    : await get(ctx, `/api/v1/namespaces/${ctx.proxyNamespace}/pods`, `pods in namespace ${ctx.proxyNamespace}`);
  const name = 'meshed pods and their proxies are ready';
  if (!pods.ok) return [{ name, result: pods.result }];
  const meshed = (pods.body.items ?? []).filter((p: Obj) =>
    [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].some((c: Obj) => c.name === SIDECAR.proxyContainer),
  );
  // A proxy turns ready only once the identity service certified it, so ready means certified.
  const unready = meshed.filter((p: Obj) => {
    const proxy = [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].find((s: Obj) => s.name === SIDECAR.proxyContainer);
    return !podReady(p) || proxy?.ready !== true;
  });
  if (unready.length === 0) return [{ name, result: pass }];
  const list = unready.map((p: Obj) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ');
  return [{ name, result: fail(`not ready: ${list}`, `kubectl -n ${unready[0].metadata.namespace} logs ${unready[0].metadata.name} -c ${SIDECAR.proxyContainer}`) }];
}

/** A GET that must answer 404: the object is not there yet. */
async function absent(ctx: CheckContext, path: string, what: string): Promise<CheckResult> {
  const a = await answer(() => ctx.client.getJson(path));
  if (a.status === 404) return pass;
  if (a.status === 200) return fail(`${what} already exists: the control plane is installed`, 'run mesh check (without --pre) to check it, or mesh uninstall | kubectl delete -f - first');
  return fail(`${what}: ${(a.body as Obj | undefined)?.message ?? `HTTP ${a.status}`}`, a.status === 401 || a.status === 403 ? 'check the credentials and RBAC of the kubeconfig context' : "see the API server's answer above");
}

async function preInstall(ctx: CheckContext): Promise<Check[]> {
  return [
    { name: 'the control-plane namespace does not exist yet', result: await absent(ctx, `/api/v1/namespaces/${ctx.namespace}`, `namespace ${ctx.namespace}`) },
    { name: 'the webhook configuration does not exist yet', result: await absent(ctx, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIGURATION}`, `mutatingwebhookconfiguration ${WEBHOOK_CONFIGURATION}`) },
  ];
}

/** One kind of object `mesh install` renders, as RBAC names it. */
export interface InstallResource { kind: string; group: string; resource: string; namespaced: boolean }

/** Every kind `mesh install` creates (install-objects.ts; check.test.ts holds the two lists equal). */
export const INSTALL_RESOURCES: readonly InstallResource[] = [
  { kind: 'Namespace', group: '', resource: 'namespaces', namespaced: false },
  { kind: 'ServiceAccount', group: '', resource: 'serviceaccounts', namespaced: true },
  { kind: 'ClusterRole', group: 'rbac.authorization.k8s.io', resource: 'clusterroles', namespaced: false },
  { kind: 'ClusterRoleBinding', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', namespaced: false },
  { kind: 'Deployment', group: 'apps', resource: 'deployments', namespaced: true },
  { kind: 'Service', group: '', resource: 'services', namespaced: true },
  { kind: 'Secret', group: '', resource: 'secrets', namespaced: true },
  { kind: 'ConfigMap', group: '', resource: 'configmaps', namespaced: true },
  { kind: 'MutatingWebhookConfiguration', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', namespaced: false },
];

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/** One SelfSubjectAccessReview per kind install creates: may these credentials create it? */
async function permissions(ctx: CheckContext): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of INSTALL_RESOURCES) {
    const verb = 'create';
    const qualified = r.group === '' ? r.resource : `${r.resource}.${r.group}`;
    const where = r.namespaced ? ` in namespace ${ctx.namespace}` : '';
    const name = `can ${verb} ${qualified}`;
    const review = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { ...(r.namespaced ? { namespace: ctx.namespace } : {}), verb, group: r.group, resource: r.resource } },
    };
    const a = await answer(() => ctx.client.request('POST', SSAR_PATH, review));
    let body: Obj | undefined;
    try {
      body = JSON.parse(a.body) as Obj;
    } catch {
      body = undefined;
    }
    if ((a.status !== 200 && a.status !== 201) || typeof body?.status?.allowed !== 'boolean') {
      checks.push({ name, result: fail(`POST selfsubjectaccessreviews: ${body?.message ?? `HTTP ${a.status}`}`, 'check the credentials of the kubeconfig context') });
      continue;
    }
    if (body.status.allowed === true) {
      checks.push({ name, result: pass });
      continue;
    }
    const reason = typeof body.status.reason === 'string' && body.status.reason !== '' ? ` (${body.status.reason})` : '';
    checks.push({
      name,
      result: fail(
        `not allowed to ${verb} ${qualified}${where}${reason}`,
        `mesh install needs ${verb} on ${qualified}: ask a cluster admin for it (kubectl auth can-i ${verb} ${qualified}${r.namespaced ? ` -n ${ctx.namespace}` : ''})`,
      ),
    });
  }
  return checks;
}

/** mesh check --pre: before install; throws ApiUnreachable when the API server does not answer at all. */
export async function checkPreInstall(ctx: CheckContext): Promise<Category[]> {
  return [
    { name: 'kubernetes-api', checks: await kubernetesApi(ctx) },
    { name: 'pre-install', checks: await preInstall(ctx) },
    { name: 'permissions', checks: await permissions(ctx) },
  ];
}

/** mesh check --proxy: the meshed pods only. */
export async function checkProxies(ctx: CheckContext): Promise<Category[]> {
  return [{ name: 'data-plane', checks: await dataPlane(ctx) }];
}

/** Every category; throws ApiUnreachable when the API server does not answer at all. */
export async function checkCluster(ctx: CheckContext): Promise<Category[]> {
  return [
    { name: 'kubernetes-api', checks: await kubernetesApi(ctx) },
    { name: 'control-plane', checks: await controlPlane(ctx) },
    { name: 'identity', checks: await identity(ctx) },
    { name: 'webhook', checks: await webhook(ctx) },
    { name: 'data-plane', checks: await dataPlane(ctx) },
  ];
}
