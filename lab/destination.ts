// A destination service for lab pods: `mesh-controller destination` in a pod,
// serving a services file (and whatever other sources are given), with its
// certificate from a MeshIdentity's issuer. Returns what a proxy or `mesh
// endpoints` needs to reach it. Shared by the end-to-end tests, the proxy's
// discovery tests and the demo.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DESTINATION_PORT } from '../contract/destination.js';
import { PROXY_ENV } from '../contract/sidecar.js';
import { destinationServerName } from '../controller/destination/names.js';
import { controllerBin, type MeshIdentity } from './identity.js';
import type { Pod } from './pod.js';
import type { PodProcess } from './pod-process.js';

export interface LabDestination {
  process: PodProcess;
  /** `https://<pod ipv4>:8086` */
  url: string;
  /** The name its certificate carries; verify it against `identity.anchors`. */
  serverName: string;
  /** Path of the trust anchors PEM. */
  trustAnchors: string;
  /** The services file it follows (when started with `file`). */
  servicesFile?: string;
  stop(): Promise<void>;
}

export interface StartDestinationOptions {
  /** Contents of a services file written into the identity dir and served as `--source file:…`. */
  file?: string;
  /** More `--source` values (e.g. `kubernetes`). */
  sources?: string[];
  extraArgs?: string[];
  port?: number;
}

/** Starts `mesh-controller destination` in `pod` and waits until it listens. */
export async function startDestination(pod: Pod, identity: MeshIdentity, o: StartDestinationOptions = {}): Promise<LabDestination> {
  const port = o.port ?? DESTINATION_PORT;
  const sources = [...(o.sources ?? [])];
  let servicesFile: string | undefined;
  if (o.file !== undefined) {
    servicesFile = join(identity.dir, `services-${pod.name}.yaml`);
    await writeFile(servicesFile, o.file, { mode: 0o644 });
    sources.unshift(`file:${servicesFile}`);
  }
  const args = [controllerBin, 'destination', '--dir', identity.dir, '--listen', `${pod.ipv4}:${port}`, '--trust-domain', identity.trustDomain];
  for (const s of sources) args.push('--source', s);
  const p = pod.spawn(process.execPath, [...args, ...(o.extraArgs ?? [])]);
  await p.waitForLine(/INFO listening /);
  const result: LabDestination = {
    process: p,
    url: `https://${pod.ipv4}:${port}`,
    serverName: destinationServerName(identity.trustDomain),
    trustAnchors: identity.anchors,
    stop: () => p.stop(),
  };
  if (servicesFile !== undefined) result.servicesFile = servicesFile;
  return result;
}

/** The variables that point a proxy at `d` (its discovery), asking in `namespace`. */
export function discoveryEnv(d: LabDestination, namespace?: string): Record<string, string> {
  return {
    [PROXY_ENV.destinationUrl]: d.url,
    [PROXY_ENV.destinationServerName]: d.serverName,
    ...(namespace ? { [PROXY_ENV.namespace]: namespace } : {}),
  };
}
