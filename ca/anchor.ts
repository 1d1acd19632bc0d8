// The two CA certificates `mesh identity init` makes: a self-signed trust
// anchor (long-lived, its key belongs offline) and the issuer it signs (the
// control plane's online signing key). Both ECDSA P-256, keys as PKCS#8 PEM.
import { checkTrustDomain } from './identity.js';
import * as pkix from './pkix.js';
import { checkValidAt, loadSigner, type PemPair } from './signer.js';
import { toPem } from './pem.js';

export interface CaCertificate extends PemPair {
  notBefore: Date;
  notAfter: Date;
}

export interface TrustAnchorOptions {
  trustDomain?: string;
  validityDays?: number;
  now?: Date;
}

export interface IssuerOptions {
  trustDomain?: string;
  validityDays?: number;
  now?: Date;
}

const DAY_MS = 86_400_000;
// A CA made now and installed at once must already be valid on a node whose
// clock is a little behind; five minutes is the usual tolerance (Kerberos').
const CA_BACKDATE_MS = 5 * 60_000;

/** `root.cluster.local`; a name too long for a CN keeps only the prefix's meaning. */
function caName(prefix: string, trustDomain: string): string {
  const cn = `${prefix}.${trustDomain}`;
  return cn.length <= pkix.MAX_COMMON_NAME ? cn : prefix;
}

function validity(now: Date, validityDays: number, limit?: Date): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validityDays) || validityDays <= 0) throw new RangeError(`validityDays must be positive, not ${validityDays}`);
  const notBefore = pkix.wholeSeconds(now.getTime() - CA_BACKDATE_MS);
  const wanted = pkix.wholeSeconds(now.getTime() + validityDays * DAY_MS);
  // A CA outliving its parent would look valid while nothing it signs verifies.
  const notAfter = limit !== undefined && limit < wanted ? limit : wanted;
  return { notBefore, notAfter };
}

export async function createTrustAnchor(options: TrustAnchorOptions = {}): Promise<CaCertificate> {
  const { trustDomain = 'cluster.local', validityDays = 3650, now = new Date() } = options;
  checkTrustDomain(trustDomain);
  const keys = await pkix.generateKeyPair(true);
  const spki = await pkix.spkiOf(keys.publicKey);
  const keyId = pkix.keyIdentifier(spki);
  const name = pkix.commonName(caName('root', trustDomain));
  const { notBefore, notAfter } = validity(now, validityDays);
  const der = await pkix.signCertificate(
    {
      issuer: name,
      subject: name,
      spki,
      notBefore,
      notAfter,
      extensions: [
        // No pathLen: the anchor must be able to sign issuers, and an operator may
        // put their own intermediate between.
        pkix.basicConstraints(true),
        pkix.keyUsage([pkix.KeyUsageBit.keyCertSign, pkix.KeyUsageBit.cRLSign]),
        pkix.subjectKeyId(keyId),
      ],
    },
    keys.privateKey,
  );
  return { certPem: toPem('CERTIFICATE', der), keyPem: await pkix.exportPkcs8Pem(keys.privateKey), notBefore, notAfter };
}

/** An intermediate CA signed by `anchor`, allowed to sign leaves only (pathLen 0). */
export async function createIssuer(anchor: PemPair, options: IssuerOptions = {}): Promise<CaCertificate> {
  const { trustDomain = 'cluster.local', validityDays = 365, now = new Date() } = options;
  checkTrustDomain(trustDomain);
  const signer = await loadSigner(anchor, 'the trust anchor');
  checkValidAt(signer, now, 'the trust anchor');
  const keys = await pkix.generateKeyPair(true);
  const spki = await pkix.spkiOf(keys.publicKey);
  const { notBefore, notAfter } = validity(now, validityDays, signer.notAfter);
  const der = await pkix.signCertificate(
    {
      // The anchor's own encoded name, byte for byte: chain building compares names.
      issuer: signer.cert.subject,
      subject: pkix.commonName(caName('identity', trustDomain)),
      spki,
      notBefore,
      notAfter,
      extensions: [
        pkix.basicConstraints(true, 0),
        pkix.keyUsage([pkix.KeyUsageBit.keyCertSign, pkix.KeyUsageBit.cRLSign]),
        pkix.subjectKeyId(pkix.keyIdentifier(spki)),
        pkix.authorityKeyId(signer.keyId),
      ],
    },
    signer.privateKey,
  );
  return { certPem: toPem('CERTIFICATE', der), keyPem: await pkix.exportPkcs8Pem(keys.privateKey), notBefore, notAfter };
}
