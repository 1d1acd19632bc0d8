// The identity API: how a proxy asks the identity service for its workload
// certificate. Written once here; the service (controller/identity/certify.ts)
// and the proxy's client (controller/identity/client.ts, run by the proxy)
// follow it, and the proxy loads nothing of the CA to do so.
//
// Transport: the control plane's HTTP/2 + TLS + JSON (shared/api.ts).
//   POST /identity.mesh.io/v1/certify   body: CertifyRequestBody
//   → 200 CertifyResponseBody; refusals as every other endpoint: 4xx with { code, message }.

export const CERTIFY_PATH = '/identity.mesh.io/v1/certify';

export interface CertifyRequestBody {
  identity: string;
  token: string;
  /** PKCS#10, base64 DER or PEM. */
  csr: string;
}

export interface CertifyResponseBody {
  /** Leaf then issuer, PEM. */
  chainPem: string;
  /** ISO 8601. */
  notAfter: string;
}
