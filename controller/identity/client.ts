// The proxy's side of certify: one call, over HTTP/2 TLS, verifying the
// identity service against the trust anchor (the proxy has no certificate of
// its own yet, so this is one-way TLS), and checking what comes back before
// the proxy builds a TLS context from it.
import { X509Certificate } from 'node:crypto';
import { certificatesFromPem, inspectCsr } from '../../ca/index.js';
import { ApiClientError, postJson } from '../../shared/api.js';
import { CERTIFY_PATH, type CertifyRequestBody } from './certify.js';

export { ApiClientError, type ApiClientErrorCode } from '../../shared/api.js';

export interface CertifyOnceOptions {
  /** `https://host:port` of the identity service. */
  url: string;
  trustAnchorPem: string;
  /** The service's name, `mesh-identity.mesh.serviceaccount.identity.<trust-domain>` (identityServerName). */
  serverName: string;
  identity: string;
  token: string;
  csrDer: Uint8Array;
  timeoutMs?: number;
}

export interface Certified {
  /** Leaf then issuer, PEM: node:tls's `cert`. */
  chainPem: string;
  notAfter: Date;
}

function badResponse(why: string): ApiClientError {
  return new ApiClientError('MESH_API_BAD_RESPONSE', `identity service: ${why}`);
}

function publicKeyDer(x509: X509Certificate): Buffer {
  return x509.publicKey.export({ type: 'spki', format: 'der' });
}

/** The leaf names us, holds our key, and chains through its issuer to one of our anchors. */
async function checkChain(o: CertifyOnceOptions, chainPem: string): Promise<void> {
  let leaf: X509Certificate;
  let issuer: X509Certificate;
  try {
    const [leafDer, issuerDer] = certificatesFromPem(chainPem, 'chainPem');
    if (issuerDer === undefined) throw badResponse('chainPem holds a single certificate, not leaf and issuer');
    leaf = new X509Certificate(leafDer!);
    issuer = new X509Certificate(issuerDer);
  } catch (e) {
    if (e instanceof ApiClientError) throw e;
    throw badResponse(`chainPem is not a PEM certificate chain (${(e as Error).message})`);
  }
  if (leaf.subjectAltName !== `DNS:${o.identity}`) throw badResponse(`certificate is for ${leaf.subjectAltName ?? 'no name'}, not DNS:${o.identity}`);
  const requested = await inspectCsr(o.csrDer);
  if (!publicKeyDer(leaf).equals(Buffer.from(requested.spki.toSchema().toBER(false)))) throw badResponse("certificate does not carry the CSR's key");
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) throw badResponse('certificate is not signed by the issuer sent with it');
  const anchors = certificatesFromPem(o.trustAnchorPem, 'the trust anchor').map((der) => new X509Certificate(der));
  if (!anchors.some((a) => issuer.checkIssued(a) && issuer.verify(a.publicKey))) throw badResponse('issuer does not chain to the trust anchor');
}

export async function certifyOnce(o: CertifyOnceOptions): Promise<Certified> {
  const body: CertifyRequestBody = { identity: o.identity, token: o.token, csr: Buffer.from(o.csrDer).toString('base64') };
  const answer = await postJson({
    url: o.url,
    path: CERTIFY_PATH,
    body,
    trustAnchorPem: o.trustAnchorPem,
    serverName: o.serverName,
    ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
  });
  const { chainPem, notAfter } = (answer ?? {}) as { chainPem?: unknown; notAfter?: unknown };
  if (typeof chainPem !== 'string' || typeof notAfter !== 'string') throw badResponse('answer lacks chainPem or notAfter');
  const expires = new Date(notAfter);
  if (Number.isNaN(expires.getTime())) throw badResponse(`notAfter ${JSON.stringify(notAfter)} is not a date`);
  await checkChain(o, chainPem);
  return { chainPem, notAfter: expires };
}
