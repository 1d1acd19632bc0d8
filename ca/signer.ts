// A CA certificate with its private key, parsed once and ready to sign: the
// trust anchor while it makes an issuer, the issuer while it makes leaves.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type * as pkijs from 'pkijs';
import { CaError } from './errors.js';
import { certificatesFromPem, toPem } from './pem.js';
import { EC_P256, parseCertificate, subjectKeyIdOf, subtle, type CryptoKey } from './pkix.js';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface Signer {
  /** The certificate, re-encoded as a single PEM block. */
  readonly certPem: string;
  readonly x509: X509Certificate;
  readonly cert: pkijs.Certificate;
  /** ECDSA P-256, imported non-extractable: nothing in mesh exports it again. */
  readonly privateKey: CryptoKey;
  /** Becomes the AKI of everything this signer signs. */
  readonly keyId: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Reads a certificate; `what` names it in errors ("the issuer certificate"). */
export function readCertificate(der: Uint8Array, what: string): { x509: X509Certificate; cert: pkijs.Certificate } {
  try {
    return { x509: new X509Certificate(der), cert: parseCertificate(der) };
  } catch (e) {
    throw new CaError('MESH_CA_BAD_PEM', `${what} is not a readable X.509 certificate (${(e as Error).message})`);
  }
}

function readPrivateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    // Accepts PKCS#8 ("PRIVATE KEY") and SEC1 ("EC PRIVATE KEY"), which step and openssl write.
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new CaError('MESH_CA_BAD_PEM', `${what} is not a readable PEM private key (${(e as Error).message})`);
  }
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    const found = key.asymmetricKeyType === 'ec' ? `EC ${details?.namedCurve ?? '?'}` : (key.asymmetricKeyType ?? 'unknown');
    throw new CaError('MESH_CA_UNSUPPORTED_KEY', `${what} is ${found}; mesh signs with ECDSA P-256 only (openssl ecparam -name prime256v1)`);
  }
  return key;
}

function sameKey(certKey: KeyObject, privateKey: KeyObject): boolean {
  const a = certKey.export({ type: 'spki', format: 'der' });
  const b = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return a.equals(b);
}

/** Parses a CA certificate and its key, and checks that they belong together. */
export async function loadSigner(pair: PemPair, what = 'the issuer'): Promise<Signer> {
  const [der] = certificatesFromPem(pair.certPem, `${what} certificate`);
  const { x509, cert } = readCertificate(der!, `${what} certificate`);
  const key = readPrivateKey(pair.keyPem, `${what} key`);
  if (!sameKey(x509.publicKey, key)) {
    throw new CaError(
      'MESH_CA_KEY_MISMATCH',
      `${what} key does not belong to ${what} certificate (${x509.subject.replace(/\n/g, ', ')}): pass the key file made together with that certificate`,
    );
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await subtle.importKey('pkcs8', pkcs8, EC_P256, false, ['sign']);
  return {
    certPem: toPem('CERTIFICATE', der!),
    x509,
    cert,
    privateKey,
    keyId: subjectKeyIdOf(cert),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
  };
}

/** Refuses a signer that is not valid at `now`: anything it signed would not verify. */
export function checkValidAt(s: { notBefore: Date; notAfter: Date }, now: Date, what: string): void {
  if (now.getTime() > s.notAfter.getTime()) {
    throw new CaError('MESH_CA_EXPIRED', `${what} expired at ${s.notAfter.toISOString()} (now ${now.toISOString()}): make or install a new one`);
  }
  if (now.getTime() < s.notBefore.getTime()) {
    throw new CaError(
      'MESH_CA_NOT_YET_VALID',
      `${what} is not valid before ${s.notBefore.toISOString()} (now ${now.toISOString()}): check this machine's clock or the certificate's dates`,
    );
  }
}
