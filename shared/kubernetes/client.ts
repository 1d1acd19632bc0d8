// A small Kubernetes API client shared by the control plane (the identity
// service's TokenReviews, the injector's namespace lookups) and the CLI
// (`mesh check`). @kubernetes/client-node is heavy (~0.7 s and ~80 MB RSS to
// import), so it is loaded only here, only when a client is made. It does the
// part worth a library: reading a kubeconfig (exec plugins, client
// certificates, proxies) or the pod's token file (re-read every minute, as
// kubelet rotates it), and the TLS options. Requests go through node:https so
// every answer is judged as it was sent.
import http from 'node:http';
import https from 'node:https';
import { KubernetesCredentialsError, type FoundCredentials } from './credentials.js';

type KubeConfig = import('@kubernetes/client-node').KubeConfig;

// An API object we read is a few kilobytes; a pod list of a big namespace, a few megabytes.
const DEFAULT_MAX_ANSWER_BYTES = 16 << 20;

export type KubeRequestErrorCode =
  /** The credentials could not be turned into a request (an exec plugin failed, a key file went away). */
  | 'MESH_KUBE_CREDENTIALS'
  /** No answer: refused, reset, TLS failure, timeout. */
  | 'MESH_KUBE_UNREACHABLE'
  /** An answer larger than we take. */
  | 'MESH_KUBE_TOO_LARGE';

export class KubeRequestError extends Error {
  constructor(readonly code: KubeRequestErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeRequestError';
  }
}

export interface KubeAnswer {
  status: number;
  /** The raw body; JSON for every API answer. */
  body: string;
}

export interface KubeClient {
  /** The API server's URL, for messages. */
  server: string;
  /** Where the credentials came from, for messages. */
  source: string;
  request(method: 'GET' | 'POST', path: string, body?: unknown, o?: { timeoutMs?: number }): Promise<KubeAnswer>;
  /** GET and parse: status and the parsed JSON (undefined when not JSON). */
  getJson(path: string, o?: { timeoutMs?: number }): Promise<{ status: number; body: unknown }>;
  /**
   * GET whose answer is read as it arrives (a watch): resolves with the status
   * and the body stream once the head is in; `signal` ends it. No overall
   * timeout: a watch lasts as long as the server keeps it (its timeoutSeconds).
   */
  stream(path: string, o: { signal: AbortSignal; connectTimeoutMs?: number }): Promise<{ status: number; body: http.IncomingMessage }>;
}

function describe(credentials: FoundCredentials): string {
  return credentials.kind === 'kubeconfig' ? `${credentials.from} ${credentials.paths.join(', ')}` : `in-cluster ${credentials.server}`;
}

async function loadKubeConfig(credentials: FoundCredentials, context: string | undefined): Promise<KubeConfig> {
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
        if (context !== undefined) {
          if (kc.getContextObject(context) === null) throw new Error(`no context named ${context}`);
          kc.setCurrentContext(context);
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

export interface KubeClientOptions {
  credentials: FoundCredentials;
  /** kubeconfig only: a context other than the current one. */
  context?: string;
  /** The API server's audit log names the caller by it. */
  userAgent: string;
  timeoutMs?: number;
  maxAnswerBytes?: number;
}

/** Loads the credentials now (a kubeconfig that does not parse fails here), then asks per request. */
export async function createKubeClient(o: KubeClientOptions): Promise<KubeClient> {
  const kc = await loadKubeConfig(o.credentials, o.context);
  const server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
  const maxBytes = o.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const request: KubeClient['request'] = async (method, path, body, ro = {}) => {
    const timeoutMs = ro.timeoutMs ?? o.timeoutMs ?? 5_000;
    // Appended, not resolved: a server URL may carry a path (Rancher's and other proxies do).
    const url = new URL(server + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const options: https.RequestOptions = {
      method,
      headers: {
        accept: 'application/json',
        'user-agent': o.userAgent,
        ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
      },
    };
    try {
      await kc.applyToHTTPSOptions(options);
    } catch (e) {
      throw new KubeRequestError('MESH_KUBE_CREDENTIALS', `cannot load the Kubernetes credentials (${(e as Error).message})`, { cause: e });
    }
    const signal = AbortSignal.timeout(timeoutMs);
    const unreachable = (e: Error): KubeRequestError =>
      new KubeRequestError('MESH_KUBE_UNREACHABLE', `cannot reach the Kubernetes API server at ${server} (${signal.aborted ? `no answer within ${timeoutMs} ms` : e.message})`, { cause: e });
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'http:' ? http : https).request(url, { ...options, signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= maxBytes) return void chunks.push(chunk);
          res.destroy();
          reject(new KubeRequestError('MESH_KUBE_TOO_LARGE', `the Kubernetes API server's answer to ${method} ${path} is larger than ${maxBytes} bytes`));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => reject(unreachable(e)));
      });
      req.on('error', (e) => reject(unreachable(e)));
      req.end(payload);
    });
  };
  const stream: KubeClient['stream'] = async (path, so) => {
    const url = new URL(server + path);
    const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json', 'user-agent': o.userAgent } };
    try {
      await kc.applyToHTTPSOptions(options);
    } catch (e) {
      throw new KubeRequestError('MESH_KUBE_CREDENTIALS', `cannot load the Kubernetes credentials (${(e as Error).message})`, { cause: e });
    }
    const connectTimeoutMs = so.connectTimeoutMs ?? o.timeoutMs ?? 5_000;
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'http:' ? http : https).request(url, { ...options, signal: so.signal }, (res) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: res });
      });
      // Only the head is timed: the body of a watch is quiet for as long as nothing changes.
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(new KubeRequestError('MESH_KUBE_UNREACHABLE', `cannot reach the Kubernetes API server at ${server} (${e.message})`, { cause: e }));
      });
      req.end();
    });
  };
  return {
    server,
    source: describe(o.credentials),
    request,
    stream,
    async getJson(path, ro) {
      const a = await request('GET', path, undefined, ro);
      let parsed: unknown;
      try {
        parsed = JSON.parse(a.body) as unknown;
      } catch {
        parsed = undefined;
      }
      return { status: a.status, body: parsed };
    },
  };
}
