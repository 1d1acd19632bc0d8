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
   * Variables for a client proxy (workload NS/clientSa) that knows `server`'s
   * addresses as meshed under NS/serverSa, and for the server's proxy.
   */
  async meshedPair(servicePod: Pod, namespace: string, clientSa: string, server: Pod, serverSa: string): Promise<{ client: Record<string, string>; server: Record<string, string> }> {
    const serverId = this.name(namespace, serverSa);
    return {
      client: { ...(await this.proxyEnv(servicePod, namespace, clientSa)), [PROXY_ENV.meshedDestinations]: `${server.ipv4}=${serverId},${server.ipv6}=${serverId}` },
      server: await this.proxyEnv(servicePod, namespace, serverSa),
    };
  }

  async destroy(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
