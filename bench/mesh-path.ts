// The mesh path: both pods meshed as a workload would be (mesh-init's rules, mesh-proxy as uid
// 2102 at log level info). The client still dials nginx's own address; iptables does the rest.
//
// With identity (the `mesh` path), the proxies are certified by `mesh-controller identity` in
// the control pod, and the client side learns from `mesh-controller destination` (file source,
// same pod) that nginx's pod is meshed and whom to expect there: discovery and balancing on, as
// the mesh runs. `mesh-static` is the same hop with the peer given by the override list
// (MESH_PROXY_MESHED_DESTINATIONS, no discovery): the two side by side are what discovery and
// balancing cost. Without identity (`mesh-plain`) the hop is plaintext: what mTLS costs. Brought down with mesh-init --cleanup, so the other paths run
// over unmeshed pods.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCsr, issueLeaf, loadSigner, tlsKeyPem } from '../ca/index.js';
import { CONTROL_PLANE, PROXY_ENV, PROXY_PORTS } from '../contract/sidecar.js';
import { TAP_MAX_RPS } from '../contract/tap.js';
import { eventually, type Pod, type PodProcess } from '../lab/index.js';
import { discoveryEnv, startDestination, type LabDestination } from '../lab/destination.js';
import { MeshIdentity } from '../lab/identity.js';
import { meshInit, startProxy } from '../test/mesh.js';
import { BENCH_NAMESPACE, BENCH_TRUST_DOMAIN } from './certs.js';
import { inboundConnections, inboundTls, mtlsProblems } from './mtls-check.js';
import { BULK_PORT } from './bulk.js';
import { NGINX_H1_PORT, NGINX_H2_PORT } from './nginx.js';
import type { PathName, ProxyProcess, RunningPath } from './paths.js';
import { pinProcess } from './pin.js';
import type { Topology } from './topology.js';

const ADMIN = `http://127.0.0.1:${PROXY_PORTS.admin}`;
const tapWatcherBin = join(dirname(fileURLToPath(import.meta.url)), 'tap-watcher.js');
/** Certifying is a key, a CSR and one round trip, after Node starts; generous for a busy machine. */
const READY_TIMEOUT_MS = 30_000;

/** The services file for the bench: nginx's pod, both its ports and the bulk transfer's, proving the bench's `server` identity. */
function benchServices(t: Topology): string {
  return [
    'services:',
    '  - name: nginx',
    `    namespace: ${BENCH_NAMESPACE}`,
    `    ports: [${NGINX_H1_PORT}, ${NGINX_H2_PORT}, ${BULK_PORT}]`,
    '    endpoints:',
    `      - { address: ${t.server.ipv4}, serviceAccount: server, name: nginx }`,
    '',
  ].join('\n');
}

/** A leaf for the tap service's identity, from the bench CA's issuer, for the `mesh-tap` path's watcher. */
async function tapLeaf(identity: MeshIdentity): Promise<{ cert: string; key: string }> {
  const name = identity.name(CONTROL_PLANE.namespace, CONTROL_PLANE.tapServiceAccount);
  const signer = await loadSigner({ certPem: await readFile(join(identity.dir, 'issuer.crt'), 'utf8'), keyPem: await readFile(join(identity.dir, 'issuer.key'), 'utf8') });
  const csr = await createCsr(name);
  const issued = await issueLeaf({ issuer: signer, csr: csr.pem, identity: name });
  const [cert, key] = [join(identity.dir, 'tap.crt'), join(identity.dir, 'tap.key')];
  await writeFile(cert, issued.chainPem, { mode: 0o644 });
  await writeFile(key, tlsKeyPem(csr.privateKey), { mode: 0o644 });
  return { cert, key };
}

export async function upMesh(t: Topology, name: PathName, o: { identity: boolean; discovery: boolean; tap?: boolean }): Promise<RunningPath> {
  const proxies: ProxyProcess[] = [];
  let identity: MeshIdentity | undefined;
  let service: PodProcess | undefined;
  let destination: LabDestination | undefined;
  let watcher: PodProcess | undefined;
  const down = async (): Promise<void> => {
    await watcher?.stop();
    await Promise.allSettled(proxies.map((p) => p.process.stop()));
    await service?.stop();
    await destination?.stop();
    for (const pod of [t.client, t.server]) await meshInit(pod, ['--cleanup']);
    await identity?.destroy();
  };
  try {
    if (o.identity) {
      identity = await MeshIdentity.create({ trustDomain: BENCH_TRUST_DOMAIN });
      service = await identity.startService(t.control);
      // Busy only while certifying, before any load: on the load CPU it cannot take time from
      // the proxies, nor be scheduled beside them if a renewal ever fell inside a run.
      pinProcess(t.pin, 'load', service.child.pid!);
      if (o.discovery) {
        destination = await startDestination(t.control, identity, { file: benchServices(t) });
        // Busy only when the client proxy first asks (and on file changes): beside the load, as the identity service.
        pinProcess(t.pin, 'load', destination.process.child.pid!);
      }
    }
    for (const [side, pod] of [['client', t.client], ['server', t.server]] as const) {
      await meshInit(pod);
      const env: Record<string, string> = { [PROXY_ENV.logLevel]: 'info' };
      if (identity) {
        Object.assign(env, await identity.proxyEnv(t.control, BENCH_NAMESPACE, side));
        // The client side learns that nginx's pod is meshed, and whom to expect there: from discovery, or from the override list.
        if (side === 'client' && destination) Object.assign(env, discoveryEnv(destination, BENCH_NAMESPACE));
        else if (side === 'client') env[PROXY_ENV.meshedDestinations] = `${t.server.ipv4}=${identity.name(BENCH_NAMESPACE, 'server')}`;
      }
      const proc = await startProxy(pod, env);
      const pid = proc.child.pid!;
      pinProcess(t.pin, 'serve', pid);
      proxies.push({ side, pid, process: proc });
    }
    // Ready means certified: before that an mTLS hop cannot be set up.
    if (identity) await Promise.all(proxies.map((p) => ready(p.side === 'client' ? t.client : t.server, p)));
    if (o.tap && identity) {
      // The tap service's stand-in, asking the server-side proxy for every request (its maximum
      // rate) and reading all of it; on the load CPU, so it costs the proxies nothing but the tap.
      const leaf = await tapLeaf(identity);
      const w = t.control.spawn(process.execPath, [tapWatcherBin, `https://${t.server.ipv4}:${PROXY_PORTS.control}`, identity.name(BENCH_NAMESPACE, 'server'), identity.anchors, leaf.cert, leaf.key, String(TAP_MAX_RPS)]);
      watcher = w;
      await w.waitForLine(/^\{"status":200\}/);
      pinProcess(t.pin, 'load', w.child.pid!);
    }
  } catch (err) {
    await down().catch(() => {});
    throw err;
  }
  const client = identity?.name(BENCH_NAMESPACE, 'client');
  return {
    name,
    description: watcher
      ? 'the mesh path, with a tap watcher on the server-side proxy asking for all it may have (1,000 requests a second) and reading all of it'
      : destination
      ? 'client pod → mesh-proxy outbound (iptables REDIRECT; discovery + P2C balancing) → mTLS → mesh-proxy inbound (REDIRECT) → nginx; identity and destination services in a third pod'
      : identity
      ? 'client pod → mesh-proxy outbound (iptables REDIRECT; peer from the override list) → mTLS → mesh-proxy inbound (REDIRECT) → nginx; identity service in a third pod'
      : 'client pod → mesh-proxy outbound (iptables REDIRECT) → plaintext → mesh-proxy inbound (REDIRECT) → nginx',
    h1: { host: t.server.ipv4, port: NGINX_H1_PORT },
    h2: { host: t.server.ipv4, port: NGINX_H2_PORT },
    // An opaque port by default (as Redis's is): TCP through both proxies, mTLS between them.
    bulk: { host: t.server.ipv4, port: BULK_PORT },
    proxies,
    ...(client && {
      confirm: async () => {
        const metrics = await t.server.execOk('curl', ['-sS', '--max-time', '5', `${ADMIN}/metrics`]);
        const problems = mtlsProblems(inboundTls(metrics.stdout, client), client);
        // The opaque bulk transfer, when it ran: one connection, mTLS like the requests.
        const bulk = inboundConnections(metrics.stdout, client, BULK_PORT);
        if (bulk.mtls + [...bulk.other.values()].reduce((a, b) => a + b, 0) > 0) problems.push(...mtlsProblems(bulk, client, 'connection').map((m) => `opaque bulk (port ${BULK_PORT}): ${m}`));
        return problems;
      },
    }),
    down,
  };
}

async function ready(pod: Pod, proxy: ProxyProcess): Promise<void> {
  try {
    await eventually(
      async () => {
        const r = await pod.exec('curl', ['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `${ADMIN}/ready`]);
        if (r.stdout.trim() !== '200') throw new Error(`/ready: ${r.stdout.trim() || r.stderr.trim()}`);
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: `the ${proxy.side}-side proxy to be certified (/ready 200)` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- ${proxy.side}-side proxy ---\n${proxy.process.output().trim()}`, { cause: err });
  }
}
