// Kubernetes' TokenReview (authentication.k8s.io/v1), minus the network: the
// request we send, and the decision on what the API server answered. The
// answer is judged as raw bytes, not through a typed client's deserializer,
// which would turn `"status": "garbage"` into `status: {}`, an "unauthenticated"
// that blames the workload (403) for what is the API server's fault (503).
import { CaError, serviceAccountOf } from '../../ca/index.js';
import { ApiError } from '../../shared/api.js';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

export type TokenReviewErrorCode =
  // The workload's fault: the API server does not vouch for the token.
  | 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED'
  // Ours: the review could not be had. The workload should retry later.
  | 'MESH_IDENTITY_REVIEW_UNAVAILABLE'
  | 'MESH_IDENTITY_REVIEW_CREDENTIALS'
  | 'MESH_IDENTITY_REVIEW_BAD_RESPONSE';

function statusOf(code: TokenReviewErrorCode): number {
  switch (code) {
    case 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED':
      return 403;
    case 'MESH_IDENTITY_REVIEW_UNAVAILABLE':
    case 'MESH_IDENTITY_REVIEW_CREDENTIALS':
    case 'MESH_IDENTITY_REVIEW_BAD_RESPONSE':
      return 503;
  }
}

/**
 * A refusal only a TokenReview can give. The CaError codes cover the rest
 * (MESH_CA_TOKEN_AUDIENCE, MESH_CA_BAD_IDENTITY); these carry their own HTTP
 * status, as the certify endpoint maps CaErrors only and passes ApiErrors on.
 */
export class TokenReviewError extends ApiError {
  declare readonly code: TokenReviewErrorCode;
  constructor(code: TokenReviewErrorCode, message: string) {
    super(statusOf(code), code, message);
    this.name = 'TokenReviewError';
  }
}

export function tokenReviewRequest(token: string, audience: string): object {
  return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } };
}

/** What the API server answered: HTTP status and body, unparsed. */
export interface TokenReviewAnswer {
  status: number;
  body: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function parse(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** The `message` of a metav1.Status body, or the start of whatever else came back. */
function statusMessage(body: string): string {
  const status = parse(body);
  if (isObject(status) && typeof status.message === 'string') return status.message;
  return body.trim() === '' ? 'no body' : JSON.stringify(body.slice(0, 200));
}

function badResponse(why: string): TokenReviewError {
  return new TokenReviewError('MESH_IDENTITY_REVIEW_BAD_RESPONSE', `the Kubernetes API server's TokenReview answer ${why}`);
}

/** Resolves the answer to the token's subject, `system:serviceaccount:<ns>:<sa>`, or throws the refusal. */
export function judgeTokenReview(answer: TokenReviewAnswer, audience: string): { subject: string } {
  const { status } = answer;
  if (status === 401 || status === 403) {
    // Our own credentials, not the workload's token: 401 is a bad or expired
    // controller token, 403 a missing `create tokenreviews` (system:auth-delegator).
    throw new TokenReviewError('MESH_IDENTITY_REVIEW_CREDENTIALS', `the Kubernetes API server refused the identity service's own credentials (${status}: ${statusMessage(answer.body)})`);
  }
  if (status !== 200 && status !== 201) {
    throw new TokenReviewError('MESH_IDENTITY_REVIEW_UNAVAILABLE', `the Kubernetes API server answered the TokenReview with ${status} (${statusMessage(answer.body)})`);
  }
  const review = parse(answer.body);
  if (!isObject(review) || review.kind !== 'TokenReview' || !isObject(review.status)) throw badResponse('is not a TokenReview with a status');
  const { authenticated, error, user, audiences } = review.status;
  if (authenticated !== undefined && typeof authenticated !== 'boolean') throw badResponse('has a non-boolean status.authenticated');
  if (error !== undefined && typeof error !== 'string') throw badResponse('has a non-string status.error');
  if (authenticated !== true) {
    throw new TokenReviewError('MESH_IDENTITY_TOKEN_UNAUTHENTICATED', `the Kubernetes API server did not authenticate the token (${error || 'no reason given'})`);
  }
  if (!isObject(user) || typeof user.username !== 'string' || user.username === '') throw badResponse('authenticates the token but names no status.user.username');
  if (audiences !== undefined && !isStrings(audiences)) throw badResponse('has a status.audiences that is not a list of names');
  // The API reference: a client that sets spec.audiences "should validate that
  // a compatible audience identifier is returned"; none returned means the token
  // is good for the API server's own audience, which is not ours.
  if (audiences === undefined || !audiences.includes(audience)) {
    throw new CaError('MESH_CA_TOKEN_AUDIENCE', `the Kubernetes API server did not confirm the audience ${audience} for the token (status.audiences: ${JSON.stringify(audiences ?? [])})`);
  }
  if (!user.username.startsWith('system:serviceaccount:')) {
    throw new CaError('MESH_CA_BAD_IDENTITY', `the token is user "${user.username}", not a service account (system:serviceaccount:<namespace>:<name>)`);
  }
  serviceAccountOf(user.username);
  return { subject: user.username };
}
