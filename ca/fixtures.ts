// Shared by the ca/ tests only: a fixed clock, a ready-made CA, and an
// assertion that a promise fails with a given CaError code.
import assert from 'node:assert/strict';
import { createIssuer, createTrustAnchor, type CaCertificate } from './anchor.js';
import { createCsr, tlsKeyPem } from './csr.js';
import { CaError, type CaErrorCode } from './errors.js';
import { issueLeaf, type IssuedLeaf } from './issue.js';
import { loadSigner, type Signer } from './signer.js';

/** The fake "now" of every test that does not need the real clock (half a second in, on purpose). */
export const T0 = new Date('2030-06-01T12:00:00.500Z');
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface TestCa {
  anchor: CaCertificate;
  issuerPair: CaCertificate;
  issuer: Signer;
}

export async function makeCa(now: Date = T0, issuerDays = 365): Promise<TestCa> {
  const anchor = await createTrustAnchor({ now });
  const issuerPair = await createIssuer(anchor, { now, validityDays: issuerDays });
  return { anchor, issuerPair, issuer: await loadSigner(issuerPair) };
}

/** A leaf and its key as PEM, the way the proxy will hand them to node:tls. */
export async function makeLeaf(ca: TestCa, identity: string, now: Date = T0, lifetimeMs?: number): Promise<IssuedLeaf & { keyPem: string }> {
  const csr = await createCsr(identity);
  const leaf = await issueLeaf({ issuer: ca.issuer, csr: csr.pem, identity, now, ...(lifetimeMs === undefined ? {} : { lifetimeMs }) });
  return { ...leaf, keyPem: tlsKeyPem(csr.privateKey) };
}

export async function rejectsWith(promise: Promise<unknown>, code: CaErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CaError, `expected a CaError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

export function throwsWith(fn: () => unknown, code: CaErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CaError && e.code === code && (message === undefined || message.test(e.message)));
}
