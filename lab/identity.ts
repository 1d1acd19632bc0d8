// A control plane's identity for lab pods: `mesh identity init` into a temp
// dir, service-account tokens, `mesh-controller identity` in a pod, and the
// MESH_PROXY_IDENTITY_* variables a proxy needs to be certified by it.
// Shared by `mesh demo`, the end-to-end tests and bench/.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Out } from '../cli/command.js';
import { runIdentityInit } from '../cli/identity-init.js';
import { runIdentityToken } from '../cli/identity-token.js';
import { PROXY_ENV } from '../contract/sidecar.js';
import { discoveryEnv, startDestination, type LabDestination } from './destination.js';
import type { Pod } from './pod.js';
import type { PodProcess } from './pod-process.js';

const node = process.execPath;

const HOUR = 3_600_000;
export const controllerBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'mesh-controller.js');
export const IDENTITY_PORT = 8080;

function capture(): Out & { out: string; err: string } {
  const c = { out: '', err: '', stdout: (t: string) => void (c.out += t), stderr: (t: string) => void (c.err += t) };
  return c;
}

export interface MeshIdentityOptions {
  trustDomain?: string;
}

export class MeshIdentity {
  private constructor(readonly dir: string, readonly trustDomain: string) {}

  /** A fresh trust anchor and issuer in a temp dir that a proxy running as uid 2102 can read. */
  static async create(o: MeshIdentityOptions = {}): Promise<MeshIdentity> {
    const trustDomain = o.trustDomain ?? 'cluster.local';
    const dir = await mkdtemp(join(tmpdir(), 'mesh-identity-'));
    const c = capture();
    const init = { trustDomain, dir, anchorValidityMs: 87_600 * HOUR, issuerValidityMs: 8_760 * HOUR, output: 'pem' as const, force: false, rotateTokenKey: false, namespace: 'mesh' };
    const code = await runIdentityInit(init, { now: () => new Date() }, c);
    if (code !== 0) throw new Error(`mesh identity init failed: ${c.err}`);
    await chmod(dir, 0o755);
    await chmod(join(dir, 'ca.crt'), 0o644);
    return new MeshIdentity(dir, trustDomain);
  }

  /** Path of the trust anchor(s) PEM. */
  get anchors(): string {
    return join(this.dir, 'ca.crt');
  }

  name(namespace: string, serviceAccount: string): string {
    return `${serviceAccount}.${namespace}.serviceaccount.identity.${this.trustDomain}`;
  }

  /** Writes a token for NS/SA (readable by the proxy's uid); returns its path. */
  async token(namespace: string, serviceAccount: string): Promise<string> {
    const t = capture();
    const code = await runIdentityToken({ namespace, serviceAccount, dir: this.dir, ttlMs: 24 * HOUR }, { now: () => new Date() }, t);
    if (code !== 0) throw new Error(`mesh identity token failed: ${t.err}`);
    const path = join(this.dir, `${namespace}.${serviceAccount}.token`);
    await writeFile(path, t.out, { mode: 0o644 });
    return path;
  }

  /** `mesh-controller identity` in `pod`, listening on the pod's IPv4 address. */
  async startService(pod: Pod, leafLifetime = '24h', extra: string[] = []): Promise<PodProcess> {
    const p = pod.spawn(node, [controllerBin, 'identity', '--dir', this.dir, '--listen', `${pod.ipv4}:${IDENTITY_PORT}`, '--leaf-lifetime', leafLifetime, ...extra]);
    await p.waitForLine(/INFO listening /);
    return p;
  }

  /** The variables that give a proxy the identity NS/SA, certified by the service in `servicePod`. */
  async proxyEnv(servicePod: Pod, namespace: string, serviceAccount: string): Promise<Record<string, string>> {
    return {
      [PROXY_ENV.identityUrl]: `https://${servicePod.ipv4}:${IDENTITY_PORT}`,
      [PROXY_ENV.identityName]: this.name(namespace, serviceAccount),
      [PROXY_ENV.identityTokenFile]: await this.token(namespace, serviceAccount),
      [PROXY_ENV.identityTrustAnchors]: this.anchors,
    };
  }

  /**
   * Variables for a client proxy (workload NS/clientSa) that learns from
   * discovery that `server`'s addresses are meshed under NS/serverSa (a
   * destination service in `servicePod`, its file declaring the server pod),
   * and for the server's proxy. No per-proxy list of meshed destinations.
   */
  async meshedPair(servicePod: Pod, namespace: string, clientSa: string, server: Pod, serverSa: string): Promise<{ client: Record<string, string>; server: Record<string, string> }> {
    const destination = await this.#destination(servicePod, podServicesFile(server, namespace, serverSa));
    return {
      client: { ...(await this.proxyEnv(servicePod, namespace, clientSa)), ...discoveryEnv(destination, namespace) },
      server: await this.proxyEnv(servicePod, namespace, serverSa),
    };
  }

  readonly #destinations = new Map<Pod, LabDestination>();

  /** One destination service per control pod, started on first need. */
  async #destination(pod: Pod, file: string): Promise<LabDestination> {
    let d = this.#destinations.get(pod);
    if (d === undefined) this.#destinations.set(pod, (d = await startDestination(pod, this, { file })));
    return d;
  }

  async destroy(): Promise<void> {
    for (const d of this.#destinations.values()) await d.stop().catch(() => {});
    this.#destinations.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Ports a lab server pod is declared to serve (the file source answers a pod's
 * address only for its ports): those the end-to-end suites dial, the default
 * opaque ports, 8000-8099, and 20000-21049 (a destination per port for the limits suite's
 * 1,000 idle sessions between proxies). (Every port would be simplest, but 65,535 of
 * them cost the destination service 0.6 s and 150 MB to parse.)
 */
const LAB_POD_PORTS = [
  9, 25, 80, 443, 587, 1234, 2525, 3306, 3307, 4222, 4223, 4224, 4444, 5432, 5433, 6379, 6380, 7000, 7001, 7070, 8443,
  9090, 9110, 9112, 9113, 9300, 9443, 9999, 11211, ...Array.from({ length: 100 }, (_, i) => 8000 + i),
  ...Array.from({ length: 1050 }, (_, i) => 20_000 + i),
];

/** A services file declaring `pod` (both its addresses) as a workload proving NS/SA. */
export function podServicesFile(pod: Pod, namespace: string, serviceAccount: string): string {
  return [
    'services:',
    `  - name: ${pod.name}-pod`,
    `    namespace: ${namespace}`,
    `    ports: [${LAB_POD_PORTS.join(', ')}]`,
    '    endpoints:',
    `      - { address: ${pod.ipv4}, serviceAccount: ${serviceAccount}, name: ${pod.name} }`,
    `      - { address: "${pod.ipv6}", serviceAccount: ${serviceAccount}, name: ${pod.name} }`,
    '',
  ].join('\n');
}
