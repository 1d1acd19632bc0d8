// "Bring your own CA": the operator hands us a trust anchor (a bundle of one or
// more roots, for rotation) and an issuer certificate + key. Everything that
// would otherwise surface hours later as failed handshakes is checked here,
// with a message that says what to fix.
import type { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from './errors.js';
import { certificatesFromPem } from './pem.js';
import * as pkix from './pkix.js';
import { checkValidAt, loadSigner, readCertificate, type Signer } from './signer.js';

export interface ValidateIssuerOptions {
  anchorPem: string;
  issuerCertPem: string;
  issuerKeyPem: string;
  now?: Date;
}

export interface ValidatedIssuer {
  /** Ready to sign leaves. */
  issuer: Signer;
  /** The anchor (of the bundle) that signed the issuer. */
  anchor: { subject: string; fingerprint256: string; notAfter: Date };
  /** Legal but worth telling the operator. */
  warnings: string[];
}

interface Parsed {
  x509: X509Certificate;
  cert: pkijs.Certificate;
}

function subjectOf(x509: X509Certificate): string {
  return x509.subject.replace(/\n/g, ', ');
}

function pathLenOf(cert: pkijs.Certificate): number | undefined {
  const bc = pkix.findExtension(cert, pkix.OID.basicConstraints)?.parsedValue;
  if (!(bc instanceof pkijs.BasicConstraints)) return undefined;
  const p = bc.pathLenConstraint;
  return p instanceof asn1js.Integer ? p.valueBlock.valueDec : p;
}

function canSignCertificates(cert: pkijs.Certificate): boolean {
  const ku = pkix.findExtension(cert, pkix.OID.keyUsage)?.parsedValue;
  // Without a KeyUsage extension every usage is allowed (RFC 5280 4.2.1.3).
  if (!(ku instanceof asn1js.BitString)) return true;
  const first = ku.valueBlock.valueHexView[0] ?? 0;
  return (first & (0x80 >> pkix.KeyUsageBit.keyCertSign)) !== 0;
}

function checkCa(p: Parsed, what: string): void {
  if (!p.x509.ca) {
    throw new CaError('MESH_CA_NOT_A_CA', `${what} (${subjectOf(p.x509)}) is not a CA certificate: it needs basicConstraints CA:TRUE`);
  }
  if (!canSignCertificates(p.cert)) {
    throw new CaError('MESH_CA_NOT_A_CA', `${what} (${subjectOf(p.x509)}) has keyUsage without keyCertSign, so it may not sign certificates`);
  }
}

export async function validateIssuer(options: ValidateIssuerOptions): Promise<ValidatedIssuer> {
  const now = options.now ?? new Date();
  const anchors = certificatesFromPem(options.anchorPem, 'the trust anchor').map((der, i, all) =>
    readCertificate(der, all.length > 1 ? `trust anchor #${i + 1}` : 'the trust anchor'),
  );
  const issuer = await loadSigner({ certPem: options.issuerCertPem, keyPem: options.issuerKeyPem }, 'the issuer');

  // The issuer's own properties first: they are what the operator made last.
  checkCa(issuer, 'the issuer certificate');
  checkValidAt(issuer, now, 'the issuer certificate');

  // Both the names/key ids (checkIssued) and the signature must line up.
  const signer = anchors.find((a) => issuer.x509.checkIssued(a.x509) && issuer.x509.verify(a.x509.publicKey));
  if (signer === undefined) {
    const bundle = anchors.map((a) => subjectOf(a.x509)).join('; ');
    throw new CaError(
      'MESH_CA_CHAIN_BROKEN',
      `the issuer certificate (${subjectOf(issuer.x509)}, issued by ${issuer.x509.issuer.replace(/\n/g, ', ')}) is not signed by the trust anchor (${bundle}); ` +
        'the issuer must be signed directly by that anchor: regenerate it with the anchor\'s key or pass the matching anchor',
    );
  }
  checkCa(signer, 'the trust anchor');
  checkValidAt({ notBefore: signer.cert.notBefore.value, notAfter: signer.cert.notAfter.value }, now, 'the trust anchor');
  if (pathLenOf(signer.cert) === 0) {
    throw new CaError('MESH_CA_NOT_A_CA', `the trust anchor (${subjectOf(signer.x509)}) has pathLen 0, so it may not sign an intermediate issuer`);
  }
  const issuerPathLen = pathLenOf(issuer.cert);

  const warnings: string[] = [];
  if (issuer.notAfter > signer.cert.notAfter.value) {
    warnings.push(`the issuer outlives the trust anchor (${signer.cert.notAfter.value.toISOString()}): leaves stop verifying when the anchor expires`);
  }
  if (issuerPathLen === undefined) {
    warnings.push('the issuer has no pathLen constraint; pathLen 0 would stop it from making further CAs');
  }
  return {
    issuer,
    anchor: { subject: subjectOf(signer.x509), fingerprint256: signer.x509.fingerprint256, notAfter: signer.cert.notAfter.value },
    warnings,
  };
}
