// admission.k8s.io/v1: an AdmissionReview in, an AdmissionReview out. Pure but
// for the namespace lookup. The webhook never refuses a pod: whatever goes
// wrong (a bad annotation, an unknown namespace), the pod is admitted as it
// came, with a warning the user sees in kubectl and a log line for the operator.
import { malformed } from '../shared/api.js';
import type { Log } from '../shared/log.js';
import type { InjectorConfig } from './config.js';
import type { NamespaceInfo } from './decide.js';
import { describeProblems, inject } from './inject.js';
import { asPod, podDisplayName } from './pod.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** Where the injector learns a namespace's labels and annotations. */
export interface NamespaceSource {
  /** undefined: no such namespace; throws when it cannot tell. */
  get(name: string): Promise<NamespaceInfo | undefined>;
}

export interface AdmitDeps {
  config: InjectorConfig;
  namespaces: NamespaceSource;
  log: Log;
}

interface Request {
  uid: string;
  namespace: string;
  operation: string;
  resource: string;
  subResource: string | undefined;
  object: unknown;
}

function readRequest(review: unknown): Request {
  const r = review as { apiVersion?: unknown; kind?: unknown; request?: Record<string, unknown> } | null;
  if (typeof r !== 'object' || r === null) throw malformed('body is not an AdmissionReview');
  if (r.apiVersion !== ADMISSION_API_VERSION || r.kind !== 'AdmissionReview') {
    throw malformed(`expected ${ADMISSION_API_VERSION} AdmissionReview, got ${String(r.apiVersion)} ${String(r.kind)}`);
  }
  const q = r.request;
  if (typeof q !== 'object' || q === null || typeof q.uid !== 'string' || q.uid === '') throw malformed('AdmissionReview has no request.uid');
  const resource = q.resource as { group?: string; version?: string; resource?: string } | undefined;
  return {
    uid: q.uid,
    namespace: typeof q.namespace === 'string' ? q.namespace : '',
    operation: String(q.operation ?? ''),
    resource: `${resource?.group ?? ''}/${resource?.version ?? ''}/${resource?.resource ?? ''}`,
    subResource: typeof q.subResource === 'string' && q.subResource !== '' ? q.subResource : undefined,
    object: q.object,
  };
}

const answer = (response: AdmissionResponse): AdmissionReviewOut => ({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });

export async function admit(review: unknown, deps: AdmitDeps): Promise<AdmissionReviewOut> {
  const req = readRequest(review);
  const { log } = deps;
  const admitted = (warning?: string): AdmissionReviewOut => answer({ uid: req.uid, allowed: true, ...(warning === undefined ? {} : { warnings: [`mesh: ${warning}`] }) });
  // The webhook configuration asks only for pod CREATE; anything else that arrives is let through untouched.
  if (req.resource !== '/v1/pods' || req.operation !== 'CREATE' || req.subResource !== undefined) return admitted();
  const pod = asPod(req.object);
  if (pod === undefined) return admitted('pod not injected: the request carries no pod object');
  const name = `${req.namespace}/${podDisplayName(pod)}`;

  let namespace: NamespaceInfo | undefined;
  try {
    namespace = (await deps.namespaces.get(req.namespace)) ?? { name: req.namespace, labels: {}, annotations: {} };
  } catch (e) {
    // Without the namespace the pod's own annotations still decide; its namespace's cannot.
    log.warn('namespace lookup failed', { namespace: req.namespace, pod: name, error: (e as Error).message });
    namespace = undefined;
  }
  const result = inject(pod, namespace ?? { name: req.namespace, labels: {}, annotations: {} }, deps.config);
  switch (result.kind) {
    case 'injected':
      log.info('injected', { pod: name, uid: req.uid, mode: result.settings.mode, native: String(result.native) });
      return answer({ uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(result.patch)).toString('base64') });
    case 'skip':
      log.debug('not injected', { pod: name, uid: req.uid, reason: result.reason });
      return namespace === undefined && result.reason === 'not-enabled'
        ? admitted(`pod not injected: namespace ${req.namespace} could not be read, so its ${'mesh.io/inject'} annotation was not seen`)
        : admitted();
    case 'invalid':
      for (const p of result.problems) log.warn('invalid annotation: pod admitted uninjected', { pod: name, uid: req.uid, annotation: p.annotation, value: p.value, from: p.from, reason: p.reason });
      return admitted(`pod not injected, invalid annotation: ${describeProblems(result.problems)}`);
  }
}
