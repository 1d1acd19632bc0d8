// The `kubernetes` token reviewer: one TokenReview per certify request, POSTed
// to the API server with the identity service's own credentials; the API
// server checks the token's signature, expiry, audience and that its pod and
// service account still exist (a deleted pod's token stops working at once).
// The client (shared/kubernetes/client.ts) loads the heavy Kubernetes library
// only when this reviewer is chosen; the answer is judged as sent (token-review.ts).
import { TOKEN_AUDIENCE, type TokenReviewer } from '../../ca/index.js';
import type { FoundCredentials } from '../../shared/kubernetes/credentials.js';
import { createKubeClient, KubeRequestError, type KubeClient } from '../../shared/kubernetes/client.js';
import { judgeTokenReview, tokenReviewRequest, TokenReviewError, TOKEN_REVIEW_PATH, type TokenReviewAnswer } from './token-review.js';

export interface KubernetesReviewerOptions {
  credentials: FoundCredentials;
  /** spec.audiences: the `aud` workloads' tokens are made for (default identity.mesh.io). */
  audience?: string;
  timeoutMs?: number;
}

// Under the proxy's 10 s for the whole certify call: it hears a 503, not a timeout.
const DEFAULT_TIMEOUT_MS = 5_000;
// A TokenReview answer is a couple of kilobytes.
const MAX_ANSWER_BYTES = 1 << 20;

async function post(client: KubeClient, token: string, audience: string): Promise<TokenReviewAnswer> {
  try {
    return await client.request('POST', TOKEN_REVIEW_PATH, tokenReviewRequest(token, audience));
  } catch (e) {
    if (!(e instanceof KubeRequestError)) throw e;
    switch (e.code) {
      case 'MESH_KUBE_CREDENTIALS':
        throw new TokenReviewError('MESH_IDENTITY_REVIEW_CREDENTIALS', `cannot load the identity service's own Kubernetes credentials (${e.message})`);
      case 'MESH_KUBE_UNREACHABLE':
        throw new TokenReviewError('MESH_IDENTITY_REVIEW_UNAVAILABLE', e.message);
      case 'MESH_KUBE_TOO_LARGE':
        throw new TokenReviewError('MESH_IDENTITY_REVIEW_BAD_RESPONSE', `the Kubernetes API server's TokenReview answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
  }
}

/** Loads the credentials now (a kubeconfig that does not parse fails start-up); asks the API server per review. */
export async function kubernetesTokenReviewer(o: KubernetesReviewerOptions): Promise<TokenReviewer> {
  const client = await createKubeClient({
    credentials: o.credentials,
    userAgent: 'mesh-controller/identity',
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxAnswerBytes: MAX_ANSWER_BYTES,
  });
  const audience = o.audience ?? TOKEN_AUDIENCE;
  return {
    name: 'kubernetes',
    // No clock of ours: the API server judges expiry by its own.
    review: async (token) => judgeTokenReview(await post(client, token, audience), audience),
  };
}
