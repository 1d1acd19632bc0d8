// The demo's world: a small meshed app on this host, built from network
// namespaces ("pods") on a private bridge this host is attached to.
//
//   pod mesh       control plane: identity, destination (file source), tap
//   pod traffic    users: GET web/shop/N, 10 a second
//   pod web        HTTP/1 front end        → api (by virtual address and name)
//   pod api        HTTP/1 service          → inventory over gRPC (two replicas,
//                                             balanced by the mesh) and, every
//                                             5th order, PostgreSQL (opaque TCP)
//   pod inventory1, inventory2             gRPC replicas
//   pod postgres   a real PostgreSQL
// Every app pod is meshed by mesh-init and runs mesh-proxy certified as its
// own service account; who is meshed, and as whom, comes from discovery.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PATHS, adminUrl, PROXY_ENV, PROXY_PORTS, PROXY_UID } from '../../contract/sidecar.js';
import { TAP_SERVICE_PORT } from '../../contract/tap.js';
import { startDestination, type LabDestination } from '../../lab/destination.js';
import { MeshIdentity } from '../../lab/identity.js';
import { eventually, Lab, type Pod, type PodProcess } from '../../lab/index.js';
import { startPostgres } from '../../lab/services.js';
import { proxyNodeFlags } from '../../proxy/runtime.js';

const here = dirname(fileURLToPath(import.meta.url));
const cliBin = (name: string): string => join(here, '..', `${name}.js`);
const app = (name: string): string => join(here, `${name}.js`);
const node = process.execPath;

/** Virtual addresses the apps dial, as they would dial a Service's ClusterIP (answered by discovery). */
export const VIPS = { web: '198.18.0.200', api: '198.18.0.201', inventory: '198.18.0.202' } as const;
export const NAMESPACE = 'default';

export interface World {
  lab: Lab;
  identity: MeshIdentity;
  destination: LabDestination;
  /** The host's own address on the demo's bridge. */
  host: string;
  tapUrl: string;
  anchors: string;
  pods: Record<'mesh' | 'traffic' | 'web' | 'api' | 'inventory1' | 'inventory2' | 'postgres', Pod>;
  proxies: Map<string, PodProcess>;
  traffic: PodProcess;
  /** Removes everything: processes, namespaces, the host's link, files. */
  destroy(): Promise<void>;
}

function servicesFile(p: World['pods']): string {
  return [
    '# The demo\'s services, as the destination service serves them (see controller/destination/README.md).',
    'services:',
    '  - name: web',
    `    addresses: [${VIPS.web}]`,
    '    ports: [8080]',
    '    endpoints:',
    `      - { address: ${p.web.ipv4}, name: web-1, serviceAccount: web }`,
    '  - name: api',
    `    addresses: [${VIPS.api}]`,
    '    ports: [8080]',
    '    timeout: 5s',
    '    endpoints:',
    `      - { address: ${p.api.ipv4}, name: api-1, serviceAccount: api }`,
    '  - name: inventory',
    `    addresses: [${VIPS.inventory}]`,
    '    ports: [9090]',
    '    retry-grpc: unavailable',
    '    endpoints:',
    `      - { address: ${p.inventory1.ipv4}, name: inventory-1, serviceAccount: inventory }`,
    `      - { address: ${p.inventory2.ipv4}, name: inventory-2, serviceAccount: inventory }`,
    '  - name: postgres',
    '    ports: [5432]',
    '    endpoints:',
    `      - { address: ${p.postgres.ipv4}, name: postgres-1, serviceAccount: postgres }`,
    '  - name: traffic',
    '    ports: [80]',
    '    endpoints:',
    `      - { address: ${p.traffic.ipv4}, name: traffic-1, serviceAccount: traffic }`,
    '',
  ].join('\n');
}

/** What a demo proxy is given: its identity, and the destination service to learn the rest from. */
export function proxyEnvFor(identityEnv: Record<string, string>, destination: LabDestination): Record<string, string> {
  return {
    ...identityEnv,
    [PROXY_ENV.logLevel]: 'info',
    ...discoveryEnv(destination),
  };
}

/** The proxy's discovery variables (contract/sidecar.ts). */
function discoveryEnv(d: LabDestination): Record<string, string> {
  const env = PROXY_ENV as Record<string, string>;
  const out: Record<string, string> = {};
  if (env.destinationUrl !== undefined) out[env.destinationUrl] = d.url;
  if (env.destinationServerName !== undefined) out[env.destinationServerName] = d.serverName;
  if (env.namespace !== undefined) out[env.namespace] = NAMESPACE;
  return out;
}

async function meshPod(pod: Pod, env: Record<string, string>): Promise<PodProcess> {
  await pod.execOk(node, [cliBin('mesh-init')]);
  const proxy = pod.spawn(node, [...proxyNodeFlags, cliBin('mesh-proxy')], { uid: PROXY_UID, env });
  await proxy.waitForLine(new RegExp(`listening addr=\\S+:${PROXY_PORTS.outbound}`));
  await eventually(async () => (await pod.exec('curl', ['-sf', '--max-time', '1', adminUrl(ADMIN_PATHS.ready)])).code === 0, { timeoutMs: 20_000, what: `${pod.name}'s proxy ready (certified)` });
  return proxy;
}

export async function buildWorld(progress: (line: string) => void): Promise<World> {
  const lab = await Lab.create();
  let identity: MeshIdentity | undefined;
  const dirs: string[] = [];
  // A supervisor stopped by a signal tears the lab down synchronously (lab.ts); the files go then too.
  const removeFiles = (): void => dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  process.on('exit', removeFiles);
  const destroy = async (): Promise<void> => {
    await lab.destroy();
    await identity?.destroy();
    removeFiles();
  };
  try {
    const host = lab.attachHost();
    const names = ['mesh', 'traffic', 'web', 'api', 'inventory1', 'inventory2', 'postgres'] as const;
    const pods = {} as World['pods'];
    for (const n of names) pods[n] = await lab.pod(n);
    progress(`pods created in network namespaces ${lab.prefix}-*: ${names.map((n) => `${n} (${pods[n].ipv4})`).join(', ')}; this host is ${host.ipv4} on their bridge`);

    identity = await MeshIdentity.create();
    dirs.push(identity.dir);
    await identity.startService(pods.mesh);
    const destination = await startDestination(pods.mesh, identity, { file: servicesFile(pods) });
    const tap = pods.mesh.spawn(node, [cliBin('mesh-controller'), 'tap', '--dir', identity.dir, '--source', `file:${destination.servicesFile!}`, '--listen', `0.0.0.0:${TAP_SERVICE_PORT}`, '--trust-domain', identity.trustDomain]);
    await tap.waitForLine(/INFO listening /);
    progress(`control plane running in pod/mesh: identity (:8080), destination (:8086, file source ${destination.servicesFile}), tap (:${TAP_SERVICE_PORT})`);

    const proxies = new Map<string, PodProcess>();
    const accounts: Record<Exclude<(typeof names)[number], 'mesh'>, string> = {
      traffic: 'traffic', web: 'web', api: 'api', inventory1: 'inventory', inventory2: 'inventory', postgres: 'postgres',
    };
    await Promise.all(
      Object.entries(accounts).map(async ([pod, sa]) => {
        const p = pods[pod as keyof typeof accounts];
        proxies.set(pod, await meshPod(p, proxyEnvFor(await identity!.proxyEnv(pods.mesh, NAMESPACE, sa), destination)));
      }),
    );
    progress(`mesh-init applied and mesh-proxy certified in ${proxies.size} pods (${[...new Set(Object.values(accounts))].map((sa) => identity!.name(NAMESPACE, sa).split('.')[0]).join(', ')} service accounts)`);

    await startPostgres(pods.postgres, 5432);
    await Promise.all([
      pods.inventory1.spawn(node, [app('inventory'), '9090', 'inventory-1']).waitForLine(/^listening/),
      pods.inventory2.spawn(node, [app('inventory'), '9090', 'inventory-2']).waitForLine(/^listening/),
      pods.api.spawn(node, [app('api'), '8080', `${VIPS.inventory}:9090`, `${pods.postgres.ipv4}:5432`]).waitForLine(/^listening/),
      pods.web.spawn(node, [app('web'), '8080', `${VIPS.api}:8080`, 'api:8080']).waitForLine(/^listening/),
    ]);
    const traffic = pods.traffic.spawn(node, [app('traffic'), `http://${VIPS.web}:8080`, '10'], { uid: 1000 });
    progress('app running: traffic → web → api → inventory (gRPC, 2 replicas) and postgres (opaque TCP); 10 requests a second');
    return {
      lab,
      identity,
      destination,
      host: host.ipv4,
      tapUrl: `https://${pods.mesh.ipv4}:${TAP_SERVICE_PORT}`,
      anchors: identity.anchors,
      pods,
      proxies,
      traffic,
      destroy,
    };
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }
}

/** The traffic generator's latest totals. */
export interface TrafficTotals {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  inventory: Record<string, number>;
  db: number;
}

export function trafficTotals(traffic: PodProcess): TrafficTotals | undefined {
  const last = traffic.lines().filter((l) => l.startsWith('{"ok"')).pop();
  return last === undefined ? undefined : (JSON.parse(last) as TrafficTotals);
}
