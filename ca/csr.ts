// Certificate signing requests (PKCS#10, RFC 2986). The proxy makes its key in
// memory and asks for exactly one name; the CA reads the request back, checks
// its self-signature (proof the requester holds the key) and the one SAN.
import { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from './errors.js';
import { parseIdentityName } from './identity.js';
import { pemBlocks, toPem } from './pem.js';
import * as pkix from './pkix.js';

export interface Csr {
  der: Uint8Array;
  pem: string;
  /** Non-extractable: the key lives and dies in this process (see tlsKeyPem). */
  privateKey: pkix.CryptoKey;
  publicKey: pkix.CryptoKey;
}

export interface InspectedCsr {
  /** The request's single DNS SAN. */
  dnsName: string;
  publicKey: pkix.CryptoKey;
  spki: pkijs.PublicKeyInfo;
}

// A P-256 request with one name is ~400 bytes; anything far larger is not ours.
const MAX_CSR_BYTES = 16 * 1024;

/** Low level: a request for `dnsNames` signed with `keys`. createCsr is the normal way in. */
export async function buildCsr(keys: pkix.CryptoKeyPair, dnsNames: readonly string[], cn = dnsNames[0] ?? ''): Promise<Uint8Array> {
  const csr = new pkijs.CertificationRequest();
  const subjectOk = cn.length <= pkix.MAX_COMMON_NAME;
  csr.subject = pkix.commonName(subjectOk ? cn : '');
  await csr.subjectPublicKeyInfo.importKey(keys.publicKey, pkix.engine);
  const extensions = new pkijs.Extensions({ extensions: [pkix.subjectAltName(dnsNames, !subjectOk)] });
  csr.attributes = [new pkijs.Attribute({ type: pkix.OID.extensionRequest, values: [extensions.toSchema()] })];
  await csr.sign(keys.privateKey, 'SHA-256', pkix.engine);
  return new Uint8Array(csr.toSchema().toBER(false));
}

export async function createCsr(identity: string): Promise<Csr> {
  parseIdentityName(identity);
  const keys = await pkix.generateKeyPair(false);
  const der = await buildCsr(keys, [identity]);
  return { der, pem: toPem('CERTIFICATE REQUEST', der), privateKey: keys.privateKey, publicKey: keys.publicKey };
}

/**
 * The key as PKCS#8 PEM for node:tls, which takes keys only as PEM/DER. Node
 * lets its own KeyObject read a non-extractable CryptoKey; the PEM stays in
 * memory, never on disk, as with Linkerd's proxy.
 */
export function tlsKeyPem(privateKey: pkix.CryptoKey): string {
  return String(KeyObject.from(privateKey).export({ type: 'pkcs8', format: 'pem' }));
}

function csrBytes(csr: Uint8Array | string): Uint8Array {
  if (typeof csr !== 'string') return csr;
  const block = pemBlocks(csr).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (block === undefined) throw new CaError('MESH_CA_BAD_CSR', 'no PEM "CERTIFICATE REQUEST" block found');
  return block.der;
}

function oidOf(value: unknown): string | undefined {
  return value instanceof asn1js.ObjectIdentifier ? value.valueBlock.toString() : undefined;
}

/** Every SAN the request asks for, as "DNS:name" / "type<n>" strings for messages. */
function requestedNames(csr: pkijs.CertificationRequest): { dns: string[]; all: string[] } {
  const dns: string[] = [];
  const all: string[] = [];
  for (const attr of csr.attributes ?? []) {
    if (attr.type !== pkix.OID.extensionRequest) continue;
    for (const value of attr.values) {
      const exts = new pkijs.Extensions({ schema: value });
      for (const ext of exts.extensions) {
        if (ext.extnID !== pkix.OID.subjectAltName) continue;
        const names = pkijs.GeneralNames.fromBER(ext.extnValue.valueBlock.valueHexView).names;
        for (const n of names) {
          if (n.type === 2 && typeof n.value === 'string') {
            dns.push(n.value);
            all.push(`DNS:${n.value}`);
          } else {
            all.push(`type${n.type}`);
          }
        }
      }
    }
  }
  return { dns, all };
}

/** Parses a request, verifies its self-signature and returns its one DNS SAN and key. */
export async function inspectCsr(input: Uint8Array | string): Promise<InspectedCsr> {
  const der = csrBytes(input);
  if (der.length > MAX_CSR_BYTES) throw new CaError('MESH_CA_BAD_CSR', `CSR is ${der.length} bytes; refusing more than ${MAX_CSR_BYTES}`);
  let csr: pkijs.CertificationRequest;
  let names: { dns: string[]; all: string[] };
  try {
    csr = pkijs.CertificationRequest.fromBER(der);
    names = requestedNames(csr);
  } catch (e) {
    throw new CaError('MESH_CA_BAD_CSR', `CSR is not a readable PKCS#10 request (${(e as Error).message})`);
  }
  const spki = csr.subjectPublicKeyInfo;
  if (spki.algorithm.algorithmId !== pkix.OID.ecPublicKey || oidOf(spki.algorithm.algorithmParams) !== pkix.OID.p256) {
    throw new CaError('MESH_CA_BAD_CSR', 'CSR key is not ECDSA P-256, the only key type mesh issues for');
  }
  if (csr.signatureAlgorithm.algorithmId !== pkix.OID.ecdsaWithSha256) {
    throw new CaError('MESH_CA_BAD_CSR', `CSR is signed with ${csr.signatureAlgorithm.algorithmId}, not ecdsa-with-SHA256`);
  }
  let verified = false;
  try {
    verified = await csr.verify(pkix.engine);
  } catch {
    // A mangled signature can fail to decode; to the caller that is still a bad signature.
  }
  if (!verified) throw new CaError('MESH_CA_CSR_SIGNATURE', "CSR signature does not verify with the CSR's own key");
  if (names.all.length !== 1 || names.dns.length !== 1) {
    const found = names.all.length === 0 ? 'none' : names.all.join(', ');
    throw new CaError('MESH_CA_CSR_SANS', `CSR must ask for exactly one DNS SAN (the identity); it asks for ${found}`);
  }
  const publicKey = await pkix.subtle.importKey('spki', spki.toSchema().toBER(false), pkix.EC_P256, true, ['verify']);
  return { dnsName: names.dns[0]!, publicKey, spki };
}
