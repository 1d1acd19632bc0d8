// The X.509 building blocks every certificate here is made of (RFC 5280), over
// pkijs + asn1js and Web Crypto. One algorithm everywhere: ECDSA P-256 / SHA-256.
import { createHash, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toPem } from './pem.js';

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const subtle = webcrypto.subtle;

// Passed explicitly to every pkijs call, so pkijs' process-wide engine is left
// alone for anyone else in the process.
export const engine = new pkijs.CryptoEngine({ name: 'mesh', crypto: webcrypto });

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const OID = {
  commonName: '2.5.4.3',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/** KeyUsage bit positions (RFC 5280 4.2.1.3). */
export const KeyUsageBit = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** RFC 5280's upper bound for a CN: a longer name goes only in the SAN. */
export const MAX_COMMON_NAME = 64;

export async function generateKeyPair(extractable: boolean): Promise<CryptoKeyPair> {
  // Web Crypto keeps the public half extractable regardless; `extractable` is the private key's.
  return subtle.generateKey(EC_P256, extractable, ['sign', 'verify']);
}

export async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', await subtle.exportKey('pkcs8', key));
}

export function commonName(cn: string): pkijs.RelativeDistinguishedNames {
  const name = new pkijs.RelativeDistinguishedNames();
  if (cn.length > 0) {
    name.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: cn }) }));
  }
  return name;
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
export function x509Time(date: Date): pkijs.Time {
  const type = date.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime;
  return new pkijs.Time({ type, value: date });
}

/** X.509 times carry whole seconds; report what the certificate will really say. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** 16 random bytes, top bit clear (positive) and next bit set (minimal DER, never 0): 126 bits, < 20 bytes. */
export function randomSerial(): asn1js.Integer {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return new asn1js.Integer({ valueHex: bytes });
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: pkijs.PublicKeyInfo): Uint8Array {
  return new Uint8Array(createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest());
}

function extension(extnID: string, critical: boolean, value: { toBER(sizeOnly?: boolean): ArrayBuffer }): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false) });
}

export function basicConstraints(ca: boolean, pathLen?: number): pkijs.Extension {
  const bc = new pkijs.BasicConstraints(pathLen === undefined ? { cA: ca } : { cA: ca, pathLenConstraint: pathLen });
  return extension(OID.basicConstraints, true, bc.toSchema());
}

export function keyUsage(bits: readonly number[]): pkijs.Extension {
  let byte = 0;
  for (const bit of bits) byte |= 0x80 >> bit;
  // DER drops trailing zero bits of a named bit list (X.690 11.2.2).
  const unusedBits = 7 - Math.max(...bits);
  return extension(OID.keyUsage, true, new asn1js.BitString({ valueHex: new Uint8Array([byte]), unusedBits }));
}

export function subjectKeyId(id: Uint8Array): pkijs.Extension {
  return extension(OID.subjectKeyId, false, new asn1js.OctetString({ valueHex: id }));
}

export function authorityKeyId(id: Uint8Array): pkijs.Extension {
  const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: id }) });
  return extension(OID.authorityKeyId, false, aki.toSchema());
}

export function extKeyUsage(purposes: readonly string[]): pkijs.Extension {
  return extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [...purposes] }).toSchema());
}

/** Critical when the subject is empty (RFC 5280 4.2.1.6). */
export function subjectAltName(dnsNames: readonly string[], critical: boolean): pkijs.Extension {
  const altNames = dnsNames.map((value) => new pkijs.GeneralName({ type: 2, value }));
  return extension(OID.subjectAltName, critical, new pkijs.GeneralNames({ names: altNames }).toSchema());
}

export function findExtension(cert: pkijs.Certificate, oid: string): pkijs.Extension | undefined {
  return cert.extensions?.find((e) => e.extnID === oid);
}

/** The SKI a certificate declares, or the one RFC 5280 method (1) gives its key. */
export function subjectKeyIdOf(cert: pkijs.Certificate): Uint8Array {
  const ext = findExtension(cert, OID.subjectKeyId);
  const parsed = ext?.parsedValue;
  if (parsed instanceof asn1js.OctetString) return parsed.valueBlock.valueHexView.slice();
  return keyIdentifier(cert.subjectPublicKeyInfo);
}

export interface CertificateFields {
  issuer: pkijs.RelativeDistinguishedNames;
  subject: pkijs.RelativeDistinguishedNames;
  spki: pkijs.PublicKeyInfo;
  notBefore: Date;
  notAfter: Date;
  extensions: pkijs.Extension[];
}

/** A v3 certificate with a random serial, signed ECDSA-SHA256 by `signingKey`; returns DER. */
export async function signCertificate(fields: CertificateFields, signingKey: CryptoKey): Promise<Uint8Array> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  cert.issuer = fields.issuer;
  cert.subject = fields.subject;
  cert.subjectPublicKeyInfo = fields.spki;
  cert.notBefore = x509Time(fields.notBefore);
  cert.notAfter = x509Time(fields.notAfter);
  cert.extensions = fields.extensions;
  await cert.sign(signingKey, 'SHA-256', engine);
  return new Uint8Array(cert.toSchema().toBER(false));
}

export async function spkiOf(publicKey: CryptoKey): Promise<pkijs.PublicKeyInfo> {
  const spki = new pkijs.PublicKeyInfo();
  await spki.importKey(publicKey, engine);
  return spki;
}

export function parseCertificate(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(der);
}
