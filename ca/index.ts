// mesh's certificate authority. The path a workload identity takes:
//   createTrustAnchor → createIssuer        (mesh identity init; or validateIssuer for your own CA)
//   loadSigner(issuer files)                 (the identity service, once at start)
//   proxy: createCsr(identity) ──► certify: reviewer.review(token) → identityName → issueLeaf
// No networking here: the identity service and the proxy carry these bytes.
export { CaError, isCaError, type CaErrorCode } from './errors.js';
export { createTrustAnchor, createIssuer, type CaCertificate, type TrustAnchorOptions, type IssuerOptions } from './anchor.js';
export { loadSigner, type Signer, type PemPair } from './signer.js';
export { validateIssuer, type ValidateIssuerOptions, type ValidatedIssuer } from './validate.js';
export {
  identityName,
  parseIdentityName,
  serviceAccountOf,
  tokenSubject,
  type WorkloadIdentity,
  type ServiceAccount,
} from './identity.js';
export { createCsr, inspectCsr, tlsKeyPem, type Csr, type InspectedCsr } from './csr.js';
export { issueLeaf, DEFAULT_LEAF_LIFETIME_MS, DEFAULT_SKEW_MS, type IssueOptions, type IssuedLeaf } from './issue.js';
export {
  createTokenKey,
  importTokenSigningKey,
  importTokenVerifyKey,
  signToken,
  verifyToken,
  TOKEN_AUDIENCE,
  TOKEN_ISSUER,
  type TokenClaims,
  type VerifiedToken,
} from './token.js';
export { certify, meshTokenReviewer, type TokenReviewer, type CertifyRequest, type CertifyContext } from './certify.js';
export { certificatesFromPem, toPem } from './pem.js';
export { issueServingCert, type ServingCert, type ServingCertOptions } from './serving.js';
