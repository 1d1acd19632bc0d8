// `mesh identity init -o yaml`: the CA as Kubernetes objects, YAML written by
// hand (the shapes are fixed, a YAML library would be a dependency for three
// documents). Certificates and keys go base64 in the Secret; the trust roots go
// as a literal block in the ConfigMap, readable with `kubectl get cm -o yaml`.

export interface IdentityMaterial {
  /** One or more anchors, each a PEM block ending in a newline. */
  anchorPem: string;
  issuerCertPem: string;
  issuerKeyPem: string;
}

export const ISSUER_SECRET = 'mesh-identity-issuer';
export const TRUST_ROOTS_CONFIGMAP = 'mesh-identity-trust-roots';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function metadata(name: string, namespace: string | undefined, component?: string): string[] {
  return [
    'metadata:',
    `  name: ${name}`,
    ...(namespace === undefined ? [] : [`  namespace: ${namespace}`]),
    '  labels:',
    '    app.kubernetes.io/part-of: mesh',
    ...(component === undefined ? [] : [`    app.kubernetes.io/component: ${component}`]),
  ];
}

/** `key: |` with the text indented under it; the text must end in exactly one newline (YAML's "clip"). */
function literal(key: string, text: string): string[] {
  return [`  ${key}: |`, ...text.replace(/\n$/, '').split('\n').map((line) => `    ${line}`)];
}

/** Namespace, issuer Secret and trust-roots ConfigMap, as one multi-document stream for `kubectl apply -f -`. */
export function identityManifests(m: IdentityMaterial, namespace: string): string {
  const docs = [
    // Applying a Namespace that exists changes nothing; a fresh cluster needs it first.
    ['apiVersion: v1', 'kind: Namespace', ...metadata(namespace, undefined)],
    [
      'apiVersion: v1',
      'kind: Secret',
      ...metadata(ISSUER_SECRET, namespace, 'identity'),
      'type: kubernetes.io/tls',
      'data:',
      `  tls.crt: ${b64(m.issuerCertPem)}`,
      `  tls.key: ${b64(m.issuerKeyPem)}`,
      `  ca.crt: ${b64(m.anchorPem)}`,
    ],
    ['apiVersion: v1', 'kind: ConfigMap', ...metadata(TRUST_ROOTS_CONFIGMAP, namespace, 'identity'), 'data:', ...literal('ca-bundle.crt', m.anchorPem)],
  ];
  return `# mesh identity: trust anchor and issuer (mesh identity init -o yaml)\n${docs.map((d) => `${d.join('\n')}\n`).join('---\n')}`;
}
