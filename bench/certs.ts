// Certificates for HAProxy's mTLS hop, made by mesh's own CA (ca/) exactly as the mesh makes
// them: trust anchor → issuer → 24 h ECDSA P-256 leaves named like workload identities. The
// yardstick then does the same handshake work as the mesh path (same curve, same chain length,
// same names), and only the software doing it differs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCsr, createIssuer, createTrustAnchor, identityName, issueLeaf, loadSigner, tlsKeyPem } from '../ca/index.js';

export const BENCH_NAMESPACE = 'bench';
export const BENCH_TRUST_DOMAIN = 'cluster.local';

export type Side = 'client' | 'server';

export interface LeafFiles {
  /** The workload identity in the certificate (its one DNS SAN, and its CN). */
  name: string;
  /** Leaf then issuer. */
  chain: string;
  key: string;
  /** Chain then key in one file, as HAProxy's `crt` takes it. */
  pem: string;
}

export interface BenchCerts {
  /** The trust anchor: what each side checks the other's chain against. */
  anchor: string;
  client: LeafFiles;
  server: LeafFiles;
}

/** The identity a side of the bench's paths has: `<side>.bench.serviceaccount.identity.cluster.local`. */
export const benchIdentity = (side: Side): string => identityName(side, BENCH_NAMESPACE, BENCH_TRUST_DOMAIN);

/** A fresh CA and a leaf for each side, written to `dir` (made if need be). */
export async function writeBenchCerts(dir: string, now = new Date()): Promise<BenchCerts> {
  mkdirSync(dir, { recursive: true });
  const anchor = await createTrustAnchor({ trustDomain: BENCH_TRUST_DOMAIN, now });
  const issuerPair = await createIssuer(anchor, { trustDomain: BENCH_TRUST_DOMAIN, now });
  const issuer = await loadSigner(issuerPair);
  const anchorFile = join(dir, 'anchor.crt');
  writeFileSync(anchorFile, anchor.certPem);
  const leaf = async (side: Side): Promise<LeafFiles> => {
    const name = benchIdentity(side);
    const csr = await createCsr(name);
    const issued = await issueLeaf({ issuer, csr: csr.der, identity: name, now });
    const key = tlsKeyPem(csr.privateKey);
    const files = { name, chain: join(dir, `${side}.crt`), key: join(dir, `${side}.key`), pem: join(dir, `${side}.pem`) };
    writeFileSync(files.chain, issued.chainPem);
    writeFileSync(files.key, key, { mode: 0o600 });
    writeFileSync(files.pem, issued.chainPem + key, { mode: 0o600 });
    return files;
  };
  return { anchor: anchorFile, client: await leaf('client'), server: await leaf('server') };
}
