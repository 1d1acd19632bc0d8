// The manager's CertifyFn against the real identity service: the token is
// re-read for every request (kubelet rotates projected tokens), and the
// leaf's notBefore is read from the chain, since the schedule is a fraction
// of the whole notBefore → notAfter life.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { certifyOnce } from '../../controller/identity/client.js';
import type { IdentityConfig } from './config.js';
import { IdentityError } from './errors.js';
import type { CertifyFn } from './manager.js';

export const CERTIFY_TIMEOUT_MS = 10_000;

export function identityServiceCertify(c: IdentityConfig, timeoutMs = CERTIFY_TIMEOUT_MS): CertifyFn {
  return async ({ identity, csrDer }) => {
    let token: string;
    try {
      token = (await readFile(c.tokenFile, 'utf8')).trim();
    } catch (e) {
      throw new IdentityError('MESH_IDENTITY_TOKEN', `cannot read the token ${c.tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (token === '') throw new IdentityError('MESH_IDENTITY_TOKEN', `the token file ${c.tokenFile} is empty`);
    const got = await certifyOnce({ url: c.url, trustAnchorPem: c.trustAnchorsPem, serverName: c.serverName, identity, token, csrDer, timeoutMs });
    // certifyOnce has checked the chain; the first certificate is the leaf.
    const leaf = new X509Certificate(got.chainPem);
    return { chainPem: got.chainPem, notBefore: new Date(leaf.validFrom), notAfter: got.notAfter };
  };
}
