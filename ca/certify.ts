// The identity service's decision, minus the network: a proxy presents a token
// and a CSR; the token says which service account it runs as, the name follows
// from that, and the CSR must ask for exactly that name.
import { identityName, serviceAccountOf } from './identity.js';
import { issueLeaf, type IssuedLeaf } from './issue.js';
import type { Signer } from './signer.js';
import { verifyToken, type VerifyTokenOptions } from './token.js';

/** Who a token belongs to. Kubernetes' TokenReview is one strategy, mesh's own JWS another. */
export interface TokenReviewer {
  readonly name: string;
  /** Resolves to the token's subject (`system:serviceaccount:<ns>:<sa>`) or throws a CaError. */
  review(token: string, now: Date): Promise<{ subject: string }>;
}

export interface CertifyRequest {
  token: string;
  csr: Uint8Array | string;
}

export interface CertifyContext {
  issuer: Signer;
  trustDomain: string;
  reviewer: TokenReviewer;
  lifetimeMs?: number;
  now?: Date;
}

/** Reviews mesh's own ES256 tokens (workloads off Kubernetes). */
export function meshTokenReviewer(options: Omit<VerifyTokenOptions, 'now'>): TokenReviewer {
  return {
    name: 'mesh-token',
    review: async (token, now) => verifyToken(token, { ...options, now }),
  };
}

export async function certify(request: CertifyRequest, ctx: CertifyContext): Promise<IssuedLeaf> {
  const now = ctx.now ?? new Date();
  const { subject } = await ctx.reviewer.review(request.token, now);
  const { serviceAccount, namespace } = serviceAccountOf(subject);
  const identity = identityName(serviceAccount, namespace, ctx.trustDomain);
  return issueLeaf({ issuer: ctx.issuer, csr: request.csr, identity, now, ...(ctx.lifetimeMs === undefined ? {} : { lifetimeMs: ctx.lifetimeMs }) });
}
