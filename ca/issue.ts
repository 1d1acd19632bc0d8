// Leaf certificates for workloads: one DNS SAN (the identity), usable as TLS
// server and client, short-lived (24 h, Linkerd's), backdated 20 s for skew.
import { CaError } from './errors.js';
import { inspectCsr } from './csr.js';
import { parseIdentityName } from './identity.js';
import { toPem } from './pem.js';
import * as pkix from './pkix.js';
import { checkValidAt, type Signer } from './signer.js';

export interface IssueOptions {
  issuer: Signer;
  /** PKCS#10, DER or PEM. */
  csr: Uint8Array | string;
  /** The name the caller has established (e.g. from a reviewed token); the CSR must ask for it. */
  identity: string;
  lifetimeMs?: number;
  skewMs?: number;
  now?: Date;
}

export interface IssuedLeaf {
  certPem: string;
  certDer: Uint8Array;
  /** Leaf then issuer: what a TLS endpoint presents (the anchor is the peer's to have). */
  chainPem: string;
  identity: string;
  notBefore: Date;
  notAfter: Date;
  /** notAfter was cut to the issuer's own expiry: renew the issuer. */
  clampedToIssuer: boolean;
}

export const DEFAULT_LEAF_LIFETIME_MS = 24 * 3_600_000;
export const DEFAULT_SKEW_MS = 20_000;

export async function issueLeaf(options: IssueOptions): Promise<IssuedLeaf> {
  const { issuer, identity, lifetimeMs = DEFAULT_LEAF_LIFETIME_MS, skewMs = DEFAULT_SKEW_MS, now = new Date() } = options;
  if (!(lifetimeMs > 0) || !(skewMs >= 0)) throw new RangeError(`lifetimeMs must be > 0 and skewMs >= 0 (got ${lifetimeMs}, ${skewMs})`);
  parseIdentityName(identity);
  checkValidAt(issuer, now, 'the issuer certificate');
  const request = await inspectCsr(options.csr);
  if (request.dnsName !== identity) {
    throw new CaError('MESH_CA_IDENTITY_MISMATCH', `CSR asks for "${request.dnsName}" but the caller is "${identity}"`);
  }

  // Never before the issuer's own start nor past its end: a leaf outside its
  // issuer's window would be refused by peers at exactly those moments.
  const wantedBefore = pkix.wholeSeconds(now.getTime() - skewMs);
  const notBefore = wantedBefore < issuer.notBefore ? issuer.notBefore : wantedBefore;
  const wantedAfter = pkix.wholeSeconds(now.getTime() + lifetimeMs);
  const clampedToIssuer = wantedAfter > issuer.notAfter;
  const notAfter = clampedToIssuer ? issuer.notAfter : wantedAfter;

  // RFC 5280 caps a CN at 64 characters; longer identities go with an empty
  // subject and a critical SAN, which peers check anyway.
  const cnFits = identity.length <= pkix.MAX_COMMON_NAME;
  const der = await pkix.signCertificate(
    {
      issuer: issuer.cert.subject,
      subject: pkix.commonName(cnFits ? identity : ''),
      spki: request.spki,
      notBefore,
      notAfter,
      extensions: [
        pkix.basicConstraints(false),
        pkix.keyUsage([pkix.KeyUsageBit.digitalSignature]),
        pkix.extKeyUsage([pkix.OID.serverAuth, pkix.OID.clientAuth]),
        pkix.subjectKeyId(pkix.keyIdentifier(request.spki)),
        pkix.authorityKeyId(issuer.keyId),
        pkix.subjectAltName([identity], !cnFits),
      ],
    },
    issuer.privateKey,
  );
  const certPem = toPem('CERTIFICATE', der);
  return { certPem, certDer: der, chainPem: certPem + issuer.certPem, identity, notBefore, notAfter, clampedToIssuer };
}
