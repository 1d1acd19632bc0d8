// Every control-plane object `mesh install` prints, as data, in apply order:
// the namespace first (everything else lives in it), the webhook configuration
// last (so the API server never calls an injector that is not there yet; with
// failurePolicy Ignore it would only skip pods, but why race).
import type { IContainer, IProbe, ISecurityContext, IVolume } from 'kubernetes-models/v1';
import { ADMISSION_WEBHOOKS_LABEL, COMPONENT_LABEL, PART_OF_LABEL } from '../contract/annotations.js';
import { DESTINATION_PORT } from '../contract/destination.js';
import { PROXY_UID } from '../contract/sidecar.js';
import { IDENTITY_PORT } from '../injector/config.js';
import { INJECT_PATH } from '../injector/index.js';
import { ISSUER_SECRET, TRUST_ROOTS_CONFIGMAP, type IdentityMaterial } from './identity-manifests.js';

export interface InstallValues {
  namespace: string;
  image: string;
  version: string;
  trustDomain: string;
  identity: IdentityMaterial;
  /** The injector's serving certificate chain and key, issued for injectorServiceName(). */
  injectorTls: { chainPem: string; keyPem: string };
  nativeSidecar: boolean;
}

/** An object with the reason it is there, printed above it. */
export interface Manifest {
  why: string;
  object: Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };
}

export const INJECTOR = 'mesh-injector';
export const IDENTITY = 'mesh-identity';
export const DESTINATION = 'mesh-destination';
export const INJECTOR_TLS_SECRET = 'mesh-injector-tls';
export const WEBHOOK_CONFIGURATION = 'mesh-injector-webhook';
const INJECTOR_PORT = 8443;

/** The name the API server dials and checks the serving certificate for. */
export const injectorServiceName = (namespace: string): string => `${INJECTOR}.${namespace}.svc`;

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function meta(name: string, namespace: string | undefined, component: string | undefined, version: string): Manifest['object']['metadata'] & Record<string, unknown> {
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: { [PART_OF_LABEL]: 'mesh', ...(component === undefined ? {} : { [COMPONENT_LABEL]: component }), 'app.kubernetes.io/version': version },
  };
}

/** Control-plane containers: the image's non-root user, nothing writable, no capabilities. */
const restricted: ISecurityContext = {
  runAsNonRoot: true,
  runAsUser: PROXY_UID,
  runAsGroup: PROXY_UID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function deployment(v: InstallValues, name: string, component: string, container: IContainer, volumes: IVolume[]): Manifest['object'] {
  const selector = { [PART_OF_LABEL]: 'mesh', [COMPONENT_LABEL]: component };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(name, v.namespace, component, v.version),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...selector, 'app.kubernetes.io/version': v.version } },
        spec: { serviceAccountName: name, automountServiceAccountToken: true, containers: [container], volumes, securityContext: { seccompProfile: { type: 'RuntimeDefault' } } },
      },
    },
  };
}

function httpsProbe(path: string, port: number): IProbe {
  return { httpGet: { path, port, scheme: 'HTTPS' }, periodSeconds: 10, timeoutSeconds: 1 };
}

function service(v: InstallValues, name: string, component: string, port: number, targetPort: number): Manifest['object'] {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(name, v.namespace, component, v.version),
    spec: { selector: { [PART_OF_LABEL]: 'mesh', [COMPONENT_LABEL]: component }, ports: [{ name: 'https', port, targetPort, protocol: 'TCP' }] },
  };
}

function rbac(v: InstallValues, name: string, component: string, rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[]): Manifest['object'][] {
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(name, undefined, component, v.version), rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta(name, undefined, component, v.version),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: v.namespace }],
    },
  ];
}

export function installManifests(v: InstallValues): Manifest[] {
  const ns = v.namespace;
  const identityRbac = rbac(v, IDENTITY, 'identity', [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }]);
  const injectorRbac = rbac(v, INJECTOR, 'injector', [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }]);
  const destinationRbac = rbac(v, DESTINATION, 'destination', [
    { apiGroups: [''], resources: ['services', 'pods'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
  ]);
  const destinationContainer: IContainer = {
    name: 'destination',
    image: v.image,
    command: ['mesh-controller'],
    args: ['destination', '--dir', '/var/run/mesh/identity', '--listen', `0.0.0.0:${DESTINATION_PORT}`, '--trust-domain', v.trustDomain, '--source', 'kubernetes'],
    ports: [{ name: 'https', containerPort: DESTINATION_PORT, protocol: 'TCP' }],
    readinessProbe: httpsProbe('/ready', DESTINATION_PORT),
    livenessProbe: httpsProbe('/live', DESTINATION_PORT),
    securityContext: restricted,
    volumeMounts: [{ name: 'identity', mountPath: '/var/run/mesh/identity', readOnly: true }],
  };
  const identityContainer: IContainer = {
    name: 'identity',
    image: v.image,
    command: ['mesh-controller'],
    args: ['identity', '--dir', '/var/run/mesh/identity', '--listen', `0.0.0.0:${IDENTITY_PORT}`, '--trust-domain', v.trustDomain, '--token-reviewer', 'kubernetes'],
    ports: [{ name: 'https', containerPort: IDENTITY_PORT, protocol: 'TCP' }],
    readinessProbe: httpsProbe('/ready', IDENTITY_PORT),
    livenessProbe: httpsProbe('/live', IDENTITY_PORT),
    securityContext: restricted,
    volumeMounts: [{ name: 'identity', mountPath: '/var/run/mesh/identity', readOnly: true }],
  };
  const injectorContainer: IContainer = {
    name: 'injector',
    image: v.image,
    command: ['mesh-controller'],
    args: [
      'injector', '--listen', `0.0.0.0:${INJECTOR_PORT}`,
      '--tls-cert', '/var/run/mesh/tls/tls.crt', '--tls-key', '/var/run/mesh/tls/tls.key',
      '--trust-anchors', '/var/run/mesh/trust-roots/ca-bundle.crt',
      '--image', v.image, '--namespace', ns, '--trust-domain', v.trustDomain, '--native-sidecar', String(v.nativeSidecar),
    ],
    ports: [{ name: 'https', containerPort: INJECTOR_PORT, protocol: 'TCP' }],
    readinessProbe: httpsProbe('/ready', INJECTOR_PORT),
    livenessProbe: httpsProbe('/live', INJECTOR_PORT),
    securityContext: restricted,
    volumeMounts: [
      { name: 'tls', mountPath: '/var/run/mesh/tls', readOnly: true },
      { name: 'trust-roots', mountPath: '/var/run/mesh/trust-roots', readOnly: true },
    ],
  };
  return [
    {
      why: 'The control plane lives here; its own pods are never injected (the webhook skips namespaces with this label).',
      object: { apiVersion: 'v1', kind: 'Namespace', metadata: { ...meta(ns, undefined, undefined, v.version), labels: { [PART_OF_LABEL]: 'mesh', [ADMISSION_WEBHOOKS_LABEL]: 'disabled' } } },
    },
    { why: 'The identity service runs as this account.', object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(IDENTITY, ns, 'identity', v.version) } },
    { why: 'The injector runs as this account.', object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(INJECTOR, ns, 'injector', v.version) } },
    { why: 'The destination service runs as this account.', object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(DESTINATION, ns, 'destination', v.version) } },
    { why: 'create tokenreviews: the only way to ask the API server whether a workload\'s token is genuine and whose it is (each certify request). Nothing else: no reads, no secrets.', object: identityRbac[0]! },
    { why: 'Grants the identity service the role above, cluster-wide (TokenReview is not namespaced).', object: identityRbac[1]! },
    { why: 'get namespaces: the webhook reads the pod\'s namespace for its mesh.io/inject and config.mesh.io/* annotations. No list or watch (one get per pod, cached 10 s); no pods: the pod comes in the AdmissionReview.', object: injectorRbac[0]! },
    { why: 'Grants the injector the role above (namespaces are cluster-scoped).', object: injectorRbac[1]! },
    { why: 'get/list/watch services, pods and endpointslices: what the destination service resolves authorities from. Read-only; no secrets.', object: destinationRbac[0]! },
    { why: 'Grants the destination service the role above, cluster-wide (it answers for every namespace).', object: destinationRbac[1]! },
    {
      why: 'The issuer: signs workload certificates. Read only by the identity service.',
      object: { apiVersion: 'v1', kind: 'Secret', metadata: meta(ISSUER_SECRET, ns, 'identity', v.version), type: 'kubernetes.io/tls', data: { 'tls.crt': b64(v.identity.issuerCertPem), 'tls.key': b64(v.identity.issuerKeyPem), 'ca.crt': b64(v.identity.anchorPem) } },
    },
    {
      why: 'The trust anchors every proxy verifies peers against; the injector writes them into each pod.',
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(TRUST_ROOTS_CONFIGMAP, ns, 'identity', v.version), data: { 'ca-bundle.crt': v.identity.anchorPem } },
    },
    {
      why: `The webhook's serving certificate, issued by the issuer for ${injectorServiceName(ns)}; the webhook configuration's caBundle is the trust anchor.`,
      object: { apiVersion: 'v1', kind: 'Secret', metadata: meta(INJECTOR_TLS_SECRET, ns, 'injector', v.version), type: 'kubernetes.io/tls', data: { 'tls.crt': b64(v.injectorTls.chainPem), 'tls.key': b64(v.injectorTls.keyPem) } },
    },
    {
      why: 'The identity service: certifies proxies over HTTP/2 + TLS, checking their tokens with TokenReview.',
      object: deployment(v, IDENTITY, 'identity', identityContainer, [
        { name: 'identity', secret: { secretName: ISSUER_SECRET, defaultMode: 0o400, items: [{ key: 'ca.crt', path: 'ca.crt' }, { key: 'tls.crt', path: 'issuer.crt' }, { key: 'tls.key', path: 'issuer.key' }] } },
      ]),
    },
    { why: 'Where proxies reach the identity service (MESH_PROXY_IDENTITY_URL).', object: service(v, IDENTITY, 'identity', IDENTITY_PORT, IDENTITY_PORT) },
    {
      // Shares the issuer secret to issue its own serving certificate at start-up; see the report/README: a
      // certificate obtained from the identity service would keep the issuer key in one pod only.
      why: 'The destination service: tells proxies what an authority resolves to (EndpointSlices, Pods, Services), over HTTP/2 + TLS.',
      object: deployment(v, DESTINATION, 'destination', destinationContainer, [
        { name: 'identity', secret: { secretName: ISSUER_SECRET, defaultMode: 0o400, items: [{ key: 'ca.crt', path: 'ca.crt' }, { key: 'tls.crt', path: 'issuer.crt' }, { key: 'tls.key', path: 'issuer.key' }] } },
      ]),
    },
    { why: 'Where proxies reach the destination service.', object: service(v, DESTINATION, 'destination', DESTINATION_PORT, DESTINATION_PORT) },
    {
      why: 'The injector: the mutating admission webhook.',
      object: deployment(v, INJECTOR, 'injector', injectorContainer, [
        { name: 'tls', secret: { secretName: INJECTOR_TLS_SECRET, defaultMode: 0o400 } },
        { name: 'trust-roots', configMap: { name: TRUST_ROOTS_CONFIGMAP } },
      ]),
    },
    { why: 'Where the API server reaches the webhook.', object: service(v, INJECTOR, 'injector', 443, INJECTOR_PORT) },
    {
      why: 'Pod creations go to the injector. Ignore: if it is down, pods start unmeshed rather than not at all. kube-system, this namespace and namespaces labelled config.mesh.io/admission-webhooks=disabled are never sent.',
      object: {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: meta(WEBHOOK_CONFIGURATION, undefined, 'injector', v.version),
        webhooks: [
          {
            name: 'injector.mesh.io',
            clientConfig: { service: { name: INJECTOR, namespace: ns, path: INJECT_PATH, port: 443 }, caBundle: b64(v.identity.anchorPem) },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
            namespaceSelector: {
              matchExpressions: [
                { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', ns] },
                { key: ADMISSION_WEBHOOKS_LABEL, operator: 'NotIn', values: ['disabled'] },
              ],
            },
            failurePolicy: 'Ignore',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            timeoutSeconds: 10,
            matchPolicy: 'Equivalent',
          },
        ],
      },
    },
  ];
}
