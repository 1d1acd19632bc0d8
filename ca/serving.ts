// TLS server certificates for control-plane endpoints that are not workloads:
// the injector's webhook, which the API server reaches by its Service's DNS
// name (mesh-injector.mesh.svc) and verifies against the webhook's caBundle.
// Issued by the mesh's issuer, so caBundle is the trust anchor.
import { CaError } from './errors.js';
import { isDnsLabel } from './identity.js';
import { toPem } from './pem.js';
import * as pkix from './pkix.js';
import { checkValidAt, type Signer } from './signer.js';

export interface ServingCertOptions {
  issuer: Signer;
  /** Every name clients dial, e.g. mesh-injector.mesh.svc; the first is also the CN. */
  dnsNames: readonly string[];
  lifetimeMs: number;
  now?: Date;
}

export interface ServingCert {
  certPem: string;
  /** Leaf then issuer: what the server presents. */
  chainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export async function issueServingCert(o: ServingCertOptions): Promise<ServingCert> {
  const now = o.now ?? new Date();
  if (o.dnsNames.length === 0) throw new CaError('MESH_CA_BAD_IDENTITY', 'a serving certificate needs at least one DNS name');
  for (const name of o.dnsNames) {
    if (name.length > 253 || !name.split('.').every(isDnsLabel)) throw new CaError('MESH_CA_BAD_IDENTITY', `"${name}" is not a lowercase DNS name`);
  }
  checkValidAt(o.issuer, now, 'the issuer certificate');
  const keys = await pkix.generateKeyPair(true);
  const spki = await pkix.spkiOf(keys.publicKey);
  const notBefore = pkix.wholeSeconds(Math.max(now.getTime() - 20_000, o.issuer.notBefore.getTime()));
  // Never past the issuer: the chain would stop verifying before the leaf does.
  const notAfter = pkix.wholeSeconds(Math.min(now.getTime() + o.lifetimeMs, o.issuer.notAfter.getTime()));
  const cn = o.dnsNames[0]!;
  const der = await pkix.signCertificate(
    {
      issuer: o.issuer.cert.subject,
      subject: pkix.commonName(cn.length <= pkix.MAX_COMMON_NAME ? cn : ''),
      spki,
      notBefore,
      notAfter,
      extensions: [
        pkix.basicConstraints(false),
        pkix.keyUsage([pkix.KeyUsageBit.digitalSignature]),
        pkix.extKeyUsage([pkix.OID.serverAuth]),
        pkix.subjectKeyId(pkix.keyIdentifier(spki)),
        pkix.authorityKeyId(o.issuer.keyId),
        pkix.subjectAltName(o.dnsNames, cn.length > pkix.MAX_COMMON_NAME),
      ],
    },
    o.issuer.privateKey,
  );
  const certPem = toPem('CERTIFICATE', der);
  return { certPem, chainPem: certPem + o.issuer.certPem, keyPem: await pkix.exportPkcs8Pem(keys.privateKey), notBefore, notAfter };
}
