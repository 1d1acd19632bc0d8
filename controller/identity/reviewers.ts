// Who a token belongs to, as a strategy chosen by name (--token-reviewer).
// `mesh`: the control plane's own ES256 tokens (`mesh identity token`), checked
// against DIR/token.pub. `kubernetes`: the API server's TokenReview, asked with
// the service's own credentials (its pod's service account, or a kubeconfig).
import { join } from 'node:path';
import { importTokenVerifyKey, meshTokenReviewer, type TokenReviewer } from '../../ca/index.js';
import { IdentityFilesError, identityFiles, readIdentityFile } from './files.js';
import { findKubernetesCredentials, KubernetesCredentialsError } from '../../shared/kubernetes/credentials.js';
import { kubernetesTokenReviewer } from './kubernetes-reviewer.js';

export const tokenReviewerNames = ['mesh', 'kubernetes'] as const;
export type TokenReviewerName = (typeof tokenReviewerNames)[number];

export function isTokenReviewerName(name: string): name is TokenReviewerName {
  return (tokenReviewerNames as readonly string[]).includes(name);
}

export interface TokenReviewerContext {
  /** The identity directory (mesh: token.pub). */
  dir: string;
  /** kubernetes: a kubeconfig to use instead of KUBECONFIG or the pod's own service account. */
  kubeconfig?: string | undefined;
}

const PUBLIC_KEY = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

async function meshReviewer(dir: string): Promise<TokenReviewer> {
  const text = await readIdentityFile(dir, 'tokenPub');
  // Every key in the file is accepted: the old one stays while its tokens live.
  const blocks = text.match(PUBLIC_KEY) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM "PUBLIC KEY" block');
    const publicKey = await Promise.all(blocks.map((pem) => importTokenVerifyKey(pem)));
    return meshTokenReviewer({ publicKey });
  } catch (e) {
    throw new IdentityFilesError(`${join(dir, identityFiles.tokenPub)} is not a usable token public key (${(e as Error).message})`);
  }
}

async function kubernetesReviewer(kubeconfig: string | undefined): Promise<TokenReviewer> {
  const credentials = findKubernetesCredentials({ kubeconfig });
  if (credentials.kind === 'none') throw new KubernetesCredentialsError(credentials.reason);
  return kubernetesTokenReviewer({ credentials });
}

export async function createTokenReviewer(name: TokenReviewerName, context: TokenReviewerContext): Promise<TokenReviewer> {
  switch (name) {
    case 'mesh':
      return meshReviewer(context.dir);
    case 'kubernetes':
      return kubernetesReviewer(context.kubeconfig);
  }
}
