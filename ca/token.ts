// Service-account tokens for workloads off Kubernetes (VMs, bare hosts), where
// there is no TokenReview to ask: a compact JWS (RFC 7515), ES256, signed by
// the control plane's dedicated token key. Only ES256 is accepted, so "alg: none"
// and HMAC-with-the-public-key confusions cannot arise.
import { IDENTITY_AUDIENCE } from '../contract/sidecar.js';
import { CaError, type CaErrorCode } from './errors.js';
import { serviceAccountOf, tokenSubject, type ServiceAccount } from './identity.js';
import { pemBlocks, toPem } from './pem.js';
import * as pkix from './pkix.js';

export const TOKEN_ISSUER = 'mesh';
/** Tokens are made for the identity service and nothing else (the sidecar contract's audience). */
export const TOKEN_AUDIENCE = IDENTITY_AUDIENCE;
// Tokens are handed to machines by an operator; a month between re-issues.
export const DEFAULT_TOKEN_TTL_MS = 30 * 86_400_000;
const MAX_TOKEN_CHARS = 8 * 1024;

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
}

export interface SignTokenOptions extends ServiceAccount {
  privateKey: pkix.CryptoKey;
  audience?: string;
  ttlMs?: number;
  now?: Date;
}

export interface VerifyTokenOptions {
  /** Several during a key rotation: the old one until its tokens expire. */
  publicKey: pkix.CryptoKey | readonly pkix.CryptoKey[];
  audience?: string;
  now?: Date;
  skewMs?: number;
}

export interface VerifiedToken extends ServiceAccount {
  subject: string;
  expiresAt: Date;
}

export interface TokenKeyPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

const encoder = new TextEncoder();

function b64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? encoder.encode(data) : data).toString('base64url');
}

function fail(code: CaErrorCode, why: string): never {
  throw new CaError(code, `service-account token refused: ${why}`);
}

/** A fresh ES256 key pair for signing tokens, as PEM (PKCS#8 and SPKI). */
export async function createTokenKey(): Promise<TokenKeyPem> {
  const keys = await pkix.generateKeyPair(true);
  const spki = await pkix.subtle.exportKey('spki', keys.publicKey);
  return { privateKeyPem: await pkix.exportPkcs8Pem(keys.privateKey), publicKeyPem: toPem('PUBLIC KEY', spki) };
}

export async function importTokenSigningKey(pem: string): Promise<pkix.CryptoKey> {
  return pkix.subtle.importKey('pkcs8', pemBody(pem, 'PRIVATE KEY'), pkix.EC_P256, false, ['sign']);
}

export async function importTokenVerifyKey(pem: string): Promise<pkix.CryptoKey> {
  return pkix.subtle.importKey('spki', pemBody(pem, 'PUBLIC KEY'), pkix.EC_P256, true, ['verify']);
}

function pemBody(pem: string, label: string): Uint8Array {
  const block = pemBlocks(pem).find((b) => b.label === label);
  if (block === undefined) throw new CaError('MESH_CA_BAD_PEM', `token key: no PEM "${label}" block found`);
  return block.der;
}

export async function signToken(options: SignTokenOptions): Promise<string> {
  const { privateKey, audience = TOKEN_AUDIENCE, ttlMs = DEFAULT_TOKEN_TTL_MS, now = new Date() } = options;
  const iat = Math.floor(now.getTime() / 1000);
  const claims: TokenClaims = {
    iss: TOKEN_ISSUER,
    sub: tokenSubject(options.namespace, options.serviceAccount),
    aud: audience,
    iat,
    exp: iat + Math.max(1, Math.floor(ttlMs / 1000)),
  };
  const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  // Web Crypto's ECDSA output is r||s, exactly JWS's ES256 encoding (RFC 7518 3.4).
  const signature = await pkix.subtle.sign(pkix.ECDSA_SHA256, privateKey, encoder.encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

function decodeJson(segment: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return fail('MESH_CA_TOKEN_MALFORMED', `its ${what} is not a base64url JSON object`);
}

function isNumericDate(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export async function verifyToken(token: string, options: VerifyTokenOptions): Promise<VerifiedToken> {
  const { audience = TOKEN_AUDIENCE, now = new Date(), skewMs = 20_000 } = options;
  const parts = token.length <= MAX_TOKEN_CHARS ? token.split('.') : [];
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    fail('MESH_CA_TOKEN_MALFORMED', 'not a compact JWS (three base64url parts)');
  }
  const [head, body, sig] = parts as [string, string, string];
  const header = decodeJson(head, 'header');
  if (header.alg !== 'ES256') fail('MESH_CA_TOKEN_MALFORMED', `algorithm ${JSON.stringify(header.alg)} is not ES256`);
  const claims = decodeJson(body, 'payload');

  // Signature before any claim is believed.
  const signature = Buffer.from(sig, 'base64url');
  const data = encoder.encode(`${head}.${body}`);
  const keys = ([] as pkix.CryptoKey[]).concat(options.publicKey);
  let signed = false;
  for (const key of keys) {
    if (signature.length === 64 && (await pkix.subtle.verify(pkix.ECDSA_SHA256, key, signature, data))) {
      signed = true;
      break;
    }
  }
  if (!signed) fail('MESH_CA_TOKEN_SIGNATURE', 'signature does not verify with the control plane token key');

  if (claims.iss !== TOKEN_ISSUER) fail('MESH_CA_TOKEN_ISSUER', `issuer ${JSON.stringify(claims.iss)} is not "${TOKEN_ISSUER}"`);
  const aud = claims.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(audience)) fail('MESH_CA_TOKEN_AUDIENCE', `audience ${JSON.stringify(aud)} does not include "${audience}"`);
  if (!isNumericDate(claims.exp) || !isNumericDate(claims.iat)) fail('MESH_CA_TOKEN_MALFORMED', 'iat and exp must be numeric dates');
  const t = now.getTime();
  if (t - skewMs >= claims.exp * 1000) fail('MESH_CA_TOKEN_EXPIRED', `expired at ${new Date(claims.exp * 1000).toISOString()}`);
  const nbf = isNumericDate(claims.nbf) ? Math.max(claims.nbf, claims.iat) : claims.iat;
  if (t + skewMs < nbf * 1000) fail('MESH_CA_TOKEN_NOT_YET_VALID', `not valid before ${new Date(nbf * 1000).toISOString()}: check clocks`);
  if (typeof claims.sub !== 'string') fail('MESH_CA_TOKEN_MALFORMED', 'no subject');
  let account: ServiceAccount;
  try {
    account = serviceAccountOf(claims.sub);
  } catch (e) {
    return fail('MESH_CA_TOKEN_MALFORMED', (e as Error).message);
  }
  return { ...account, subject: claims.sub, expiresAt: new Date(claims.exp * 1000) };
}
