// The `kubernetes` token reviewer: one TokenReview per certify request, POSTed
// to the API server with the identity service's own credentials; the API
// server checks the token's signature, expiry, audience and that its pod and
// service account still exist (a deleted pod's token stops working at once).
//
// @kubernetes/client-node is heavy (~50 MB on disk; ~0.7 s and ~80 MB RSS to
// import), so it is imported here, at start-up, only when this reviewer is
// chosen. It does the part worth a library: reading a kubeconfig (exec plugins,
// client certificates, proxies) or the pod's token file (re-read every minute,
// as kubelet rotates it), and building the TLS agent. The POST itself goes
// through node:https so the answer is judged as sent (token-review.ts).
import http from 'node:http';
import https from 'node:https';
import { TOKEN_AUDIENCE, type TokenReviewer } from '../../ca/index.js';
import { KubernetesCredentialsError, type FoundCredentials } from '../../shared/kubernetes/credentials.js';
import { judgeTokenReview, tokenReviewRequest, TokenReviewError, TOKEN_REVIEW_PATH, type TokenReviewAnswer } from './token-review.js';

type KubeConfig = import('@kubernetes/client-node').KubeConfig;

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

function describe(credentials: FoundCredentials): string {
  return credentials.kind === 'kubeconfig' ? `${credentials.from} ${credentials.paths.join(', ')}` : `in-cluster ${credentials.server}`;
}

async function loadKubeConfig(credentials: FoundCredentials): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    switch (credentials.kind) {
      case 'kubeconfig': {
        const [first, ...rest] = credentials.paths;
        kc.loadFromFile(first!);
        for (const path of rest) {
          const more = new KubeConfig();
          more.loadFromFile(path);
          kc.mergeConfig(more, kc.getCurrentContext() !== undefined);
        }
        break;
      }
      case 'in-cluster':
        kc.loadFromClusterAndUser(
          { name: 'in-cluster', server: credentials.server, caFile: credentials.caFile, skipTLSVerify: false },
          { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: credentials.tokenFile } } },
        );
        break;
    }
  } catch (e) {
    throw new KubernetesCredentialsError(`${describe(credentials)}: ${(e as Error).message}`);
  }
  if (kc.getCurrentCluster() === null) throw new KubernetesCredentialsError(`${describe(credentials)}: the current context names no cluster`);
  return kc;
}

async function post(kc: KubeConfig, token: string, audience: string, timeoutMs: number): Promise<TokenReviewAnswer> {
  const server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
  // Appended, not resolved: a server URL may carry a path (Rancher's and other proxies do).
  const url = new URL(server + TOKEN_REVIEW_PATH);
  const body = JSON.stringify(tokenReviewRequest(token, audience));
  const options: https.RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      'content-length': Buffer.byteLength(body),
      // The API server's audit log and field manager name the caller by it.
      'user-agent': 'mesh-controller/identity',
    },
  };
  try {
    await kc.applyToHTTPSOptions(options);
  } catch (e) {
    throw new TokenReviewError('MESH_IDENTITY_REVIEW_CREDENTIALS', `cannot load the identity service's own Kubernetes credentials (${(e as Error).message})`);
  }
  const signal = AbortSignal.timeout(timeoutMs);
  const unreachable = (e: Error): TokenReviewError =>
    new TokenReviewError('MESH_IDENTITY_REVIEW_UNAVAILABLE', `cannot reach the Kubernetes API server at ${server} (${signal.aborted ? `no answer within ${timeoutMs} ms` : e.message})`);
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'http:' ? http : https).request(url, { ...options, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_ANSWER_BYTES) return void chunks.push(chunk);
        res.destroy();
        reject(new TokenReviewError('MESH_IDENTITY_REVIEW_BAD_RESPONSE', `the Kubernetes API server's TokenReview answer is larger than ${MAX_ANSWER_BYTES} bytes`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => reject(unreachable(e)));
    });
    req.on('error', (e) => reject(unreachable(e)));
    req.end(body);
  });
}

/** Loads the credentials now (a kubeconfig that does not parse fails start-up); asks the API server per review. */
export async function kubernetesTokenReviewer(o: KubernetesReviewerOptions): Promise<TokenReviewer> {
  const kc = await loadKubeConfig(o.credentials);
  const audience = o.audience ?? TOKEN_AUDIENCE;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    name: 'kubernetes',
    // No clock of ours: the API server judges expiry by its own.
    review: async (token) => judgeTokenReview(await post(kc, token, audience, timeoutMs), audience),
  };
}
