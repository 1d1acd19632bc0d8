// POST /identity.mesh.io/v1/certify: a proxy sends the name it wants, its
// service-account token and a CSR; it gets a 24 h leaf for that name, or a
// refusal saying which check failed. Checks run in the order a reader would
// ask them: is the request well-formed, whose token is it, is that the name
// asked for, does the CSR ask for exactly that name with a key it holds.
import {
  CaError,
  identityName,
  issueLeaf,
  parseIdentityName,
  serviceAccountOf,
  type CaErrorCode,
  type Signer,
  type TokenReviewer,
} from '../../ca/index.js';
import type { Log } from '../../shared/log.js';
import { ApiError, malformed, type JsonEndpoint } from '../../shared/api.js';

export const CERTIFY_PATH = '/identity.mesh.io/v1/certify';

export interface CertifyRequestBody {
  identity: string;
  token: string;
  /** PKCS#10, base64 DER or PEM. */
  csr: string;
}

export interface CertifyResponseBody {
  /** Leaf then issuer, PEM. */
  chainPem: string;
  /** ISO 8601. */
  notAfter: string;
}

export interface CertifyContext {
  issuer: Signer;
  trustDomain: string;
  reviewer: TokenReviewer;
  leafLifetimeMs: number;
  log: Log;
  now(): Date;
}

/** 400 for what no retry can fix, 403 for a caller who may not have that name, 500 for our own state. */
function statusOf(code: CaErrorCode): number {
  switch (code) {
    case 'MESH_CA_BAD_CSR':
      return 400;
    // From here on the request was readable and is refused.
    case 'MESH_CA_CSR_SIGNATURE':
    case 'MESH_CA_CSR_SANS':
    case 'MESH_CA_IDENTITY_MISMATCH':
    case 'MESH_CA_TOKEN_MALFORMED':
    case 'MESH_CA_TOKEN_SIGNATURE':
    case 'MESH_CA_TOKEN_ISSUER':
    case 'MESH_CA_TOKEN_AUDIENCE':
    case 'MESH_CA_TOKEN_EXPIRED':
    case 'MESH_CA_TOKEN_NOT_YET_VALID':
    // A reviewed token whose account cannot be named (a requested name that is
    // not one is refused earlier, as malformed).
    case 'MESH_CA_BAD_IDENTITY':
      return 403;
    // The issuer expired or its files are wrong: the service's fault, not the caller's.
    case 'MESH_CA_BAD_PEM':
    case 'MESH_CA_UNSUPPORTED_KEY':
    case 'MESH_CA_KEY_MISMATCH':
    case 'MESH_CA_NOT_A_CA':
    case 'MESH_CA_EXPIRED':
    case 'MESH_CA_NOT_YET_VALID':
    case 'MESH_CA_CHAIN_BROKEN':
      return 500;
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function parseBody(body: unknown): { identity: string; token: string; csr: Uint8Array | string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw malformed('body must be a JSON object { identity, token, csr }');
  const fields = body as Record<string, unknown>;
  for (const name of ['identity', 'token', 'csr'] as const) {
    if (typeof fields[name] !== 'string' || fields[name] === '') throw malformed(`"${name}" must be a non-empty string`);
  }
  const { identity, token, csr } = fields as unknown as CertifyRequestBody;
  if (csr.includes('-----BEGIN')) return { identity, token, csr };
  const b64 = csr.replace(/\s+/g, '');
  if (!BASE64.test(b64) || b64.length % 4 !== 0) throw malformed('"csr" is neither PEM nor base64 DER');
  return { identity, token, csr: new Uint8Array(Buffer.from(b64, 'base64')) };
}

export async function certifyRequest(body: unknown, ctx: CertifyContext): Promise<CertifyResponseBody> {
  const request = parseBody(body);
  const now = ctx.now();
  let requested;
  try {
    requested = parseIdentityName(request.identity);
  } catch (e) {
    throw new ApiError(400, 'MESH_CA_BAD_IDENTITY', (e as Error).message);
  }
  if (requested.trustDomain !== ctx.trustDomain) {
    throw new CaError('MESH_CA_IDENTITY_MISMATCH', `"${request.identity}" is not in this trust domain (${ctx.trustDomain})`);
  }
  const { subject } = await ctx.reviewer.review(request.token, now);
  const account = serviceAccountOf(subject);
  const identity = identityName(account.serviceAccount, account.namespace, ctx.trustDomain);
  if (identity !== request.identity) {
    throw new CaError('MESH_CA_IDENTITY_MISMATCH', `the token is for ${subject} (${identity}), not for "${request.identity}"`);
  }
  const leaf = await issueLeaf({ issuer: ctx.issuer, csr: request.csr, identity, lifetimeMs: ctx.leafLifetimeMs, now });
  if (leaf.clampedToIssuer) {
    ctx.log.warn('leaf cut to the issuer expiry: renew the issuer', { identity, notAfter: leaf.notAfter.toISOString() });
  }
  return { chainPem: leaf.chainPem, notAfter: leaf.notAfter.toISOString() };
}

/** What the log calls the caller: the name it asked for, whatever it sent, kept to one printable word. */
function requestedName(body: unknown): string {
  const identity = (body as { identity?: unknown } | undefined)?.identity;
  return typeof identity === 'string' && identity !== '' ? identity.slice(0, 253).replace(/[^\x21-\x7e]/g, '?') : '-';
}

export function certifyEndpoint(ctx: CertifyContext): JsonEndpoint {
  return {
    path: CERTIFY_PATH,
    async handle(body, meta) {
      try {
        const answer = await certifyRequest(body, ctx);
        ctx.log.info('certified', { identity: requestedName(body), notAfter: answer.notAfter, remote: meta.remote });
        return answer;
      } catch (e) {
        if (e instanceof CaError) throw new ApiError(statusOf(e.code), e.code, e.message, { cause: e });
        throw e;
      }
    },
    failed(error, meta, body) {
      const fields = { identity: requestedName(body), code: error.code, reason: error.message, remote: meta.remote };
      if (error.status < 500) return ctx.log.warn('refused', fields);
      const cause = error.cause instanceof Error && !(error.cause instanceof CaError) ? error.cause.stack : undefined;
      ctx.log.error('failed', { ...fields, cause });
    },
  };
}
