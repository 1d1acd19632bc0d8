// The identity directory `mesh identity init` writes and the identity service
// and `mesh identity token` read: one layout, named in one place.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateIssuer, type Signer, type ValidatedIssuer } from '../../ca/index.js';

export const identityFiles = {
  /** Trust anchor(s), PEM: what every proxy verifies peers against. */
  anchor: 'ca.crt',
  issuerCert: 'issuer.crt',
  /** Mode 0600. */
  issuerKey: 'issuer.key',
  /** Signs service-account tokens for workloads off Kubernetes. Mode 0600. */
  tokenKey: 'token.key',
  /** One or more public keys (several while a token key is rotated). */
  tokenPub: 'token.pub',
} as const;

export type IdentityFile = keyof typeof identityFiles;

/** A file of the identity directory that is missing or unreadable. */
export class IdentityFilesError extends Error {
  readonly code = 'MESH_IDENTITY_FILES';
  constructor(message: string) {
    super(message);
    this.name = 'IdentityFilesError';
  }
}

export async function readIdentityFile(dir: string, file: IdentityFile): Promise<string> {
  const path = join(dir, identityFiles[file]);
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'ENOENT' ? `: run \`mesh identity init --out ${dir}\` first` : '';
    throw new IdentityFilesError(`cannot read ${path} (${err.code ?? err.message})${hint}`);
  }
}

/** The issuer of the directory, checked exactly as a brought-your-own CA is. */
export async function loadIssuer(dir: string, now: Date): Promise<ValidatedIssuer> {
  // One after another: with several files missing, the error names the first
  // in this fixed order, not whichever read happened to fail first.
  const anchorPem = await readIdentityFile(dir, 'anchor');
  const issuerCertPem = await readIdentityFile(dir, 'issuerCert');
  const issuerKeyPem = await readIdentityFile(dir, 'issuerKey');
  return validateIssuer({ anchorPem, issuerCertPem, issuerKeyPem, now });
}

/**
 * An issuer made by `mesh identity init --trust-domain X` is named identity.X;
 * serving another trust domain with it works, but no proxy configured for X
 * would accept the names. Worth a line at start-up, not a refusal (an operator's
 * own issuer may be named anything).
 */
export function trustDomainWarnings(issuer: Signer, trustDomain: string): string[] {
  const made = /^CN=identity\.(.+)$/.exec(issuer.x509.subject)?.[1];
  return made !== undefined && made !== trustDomain
    ? [`the issuer was made for trust domain ${made}, but this service issues names in ${trustDomain} (--trust-domain)`]
    : [];
}
