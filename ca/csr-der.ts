// The proxy's side of a certificate request, without pkijs: a P-256 key from
// node:crypto and the PKCS#10 request (RFC 2986) written as DER by hand. The
// request has one shape only (one DNS name, ecdsa-with-SHA256), so a few
// encoders do; loading pkijs and asn1js for it cost each proxy ~5 MB of RSS
// (their sources and compiled code). The CA still reads requests with pkijs
// (csr.ts: inspectCsr), which is what checks this file's output in its tests.
import { KeyObject, sign, webcrypto } from 'node:crypto';
import { CaError } from './errors.js';
import { parseIdentityName } from './identity.js';

const MAX_COMMON_NAME = 64;

// Object identifiers, already DER-encoded (tag 06, length, arcs).
const OID_COMMON_NAME = Buffer.from('0603550403', 'hex'); // 2.5.4.3
const OID_SUBJECT_ALT_NAME = Buffer.from('0603551d11', 'hex'); // 2.5.29.17
const OID_EXTENSION_REQUEST = Buffer.from('06092a864886f70d01090e', 'hex'); // 1.2.840.113549.1.9.14
const ALG_ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex'); // SEQUENCE { 1.2.840.10045.4.3.2 }

/** One DER element: tag, definite length, contents. */
function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n > 0xffff) throw new RangeError('DER element too long for a certificate request');
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const SEQUENCE = 0x30;
const SET = 0x31;

export interface WorkloadRequest {
  /** The PKCS#10 request, DER. */
  der: Buffer;
  /** The private key, PKCS#8 PEM, for node:tls; it never leaves memory. */
  keyPem: string;
  /** The public key as SubjectPublicKeyInfo DER: what the certificate must carry. */
  spkiDer: Buffer;
}

/** A fresh P-256 key and a request for exactly `identity` (its one DNS SAN; also the CN when it fits). */
export async function createWorkloadRequest(identity: string): Promise<WorkloadRequest> {
  parseIdentityName(identity);
  // Web Crypto's generator runs off the event loop; the private key stays non-extractable
  // to scripts, and node:crypto reads it for node:tls (as the CA's createCsr does).
  const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const privateKey = KeyObject.from(pair.privateKey);
  const spkiDer = KeyObject.from(pair.publicKey).export({ type: 'spki', format: 'der' });
  const name = Buffer.from(identity, 'ascii');
  // A CN holds at most 64 characters; without one the subject is empty and the SAN critical (RFC 5280 4.2.1.6).
  const withCn = name.length <= MAX_COMMON_NAME;
  const subject = withCn ? der(SEQUENCE, der(SET, der(SEQUENCE, OID_COMMON_NAME, der(0x0c, name)))) : der(SEQUENCE);
  const generalNames = der(SEQUENCE, der(0x82, name)); // [2] dNSName, IA5String contents
  const san = der(SEQUENCE, OID_SUBJECT_ALT_NAME, ...(withCn ? [] : [der(0x01, Buffer.from([0xff]))]), der(0x04, generalNames));
  const attributes = der(0xa0, der(SEQUENCE, OID_EXTENSION_REQUEST, der(SET, der(SEQUENCE, san))));
  const info = der(SEQUENCE, der(0x02, Buffer.from([0])), subject, spkiDer, attributes);
  // node:crypto's ECDSA signature is DER (r, s) already, as X.509 wants it.
  const signature = sign('sha256', info, privateKey);
  const request = der(SEQUENCE, info, ALG_ECDSA_SHA256, der(0x03, Buffer.from([0]), signature));
  return { der: request, keyPem: String(privateKey.export({ type: 'pkcs8', format: 'pem' })), spkiDer };
}

/** The SubjectPublicKeyInfo of a request (the third element of its CertificationRequestInfo), DER. */
export function requestSpki(request: Uint8Array): Buffer {
  const buf = Buffer.from(request.buffer, request.byteOffset, request.byteLength);
  const bad = (): CaError => new CaError('MESH_CA_BAD_CSR', 'CSR is not a readable PKCS#10 request');
  /** [start of contents, end] of the element at `at`, which must carry `tag`. */
  const element = (at: number, tag: number): { start: number; end: number } => {
    if (buf[at] !== tag || at + 2 > buf.length) throw bad();
    let len = buf[at + 1]!;
    let start = at + 2;
    if (len & 0x80) {
      const octets = len & 0x7f;
      if (octets < 1 || octets > 2 || start + octets > buf.length) throw bad();
      len = octets === 1 ? buf[start]! : (buf[start]! << 8) | buf[start + 1]!;
      start += octets;
    }
    if (start + len > buf.length) throw bad();
    return { start, end: start + len };
  };
  const outer = element(0, SEQUENCE);
  const info = element(outer.start, SEQUENCE);
  const version = element(info.start, 0x02);
  const subject = element(version.end, SEQUENCE);
  const spki = element(subject.end, SEQUENCE);
  if (spki.end > info.end) throw bad();
  return buf.subarray(subject.end, spki.end);
}
