// The ways from the client pod to nginx that the bench compares, chosen by name. Bringing a
// path up returns where the client connects (HTTP/1.1 and h2c) and which proxy processes to
// watch; bringing it down leaves the two pods as they were, ready for the next path.
import { meshInit, startProxy } from '../test/mesh.js';
import type { PodProcess } from '../lab/index.js';
import { startHaproxy, type HaproxyMode } from './haproxy.js';
import { NGINX_H1_PORT, NGINX_H2_PORT } from './nginx.js';
import { pinProcess } from './pin.js';
import { answers, type Endpoint, type Topology } from './topology.js';

export const PATH_NAMES = ['direct', 'mesh', 'haproxy', 'haproxy-tcp'] as const;
export type PathName = (typeof PATH_NAMES)[number];

export interface ProxyProcess {
  /** Which side of the path: 'client' (beside the load) or 'server' (beside nginx). */
  side: 'client' | 'server';
  pid: number;
  process: PodProcess;
}

export interface RunningPath {
  name: PathName;
  description: string;
  h1: Endpoint;
  h2: Endpoint;
  proxies: ProxyProcess[];
  down(): Promise<void>;
}

const paths: Record<PathName, (t: Topology) => Promise<RunningPath>> = {
  direct: async (t) => ({
    name: 'direct',
    description: 'client pod → nginx',
    h1: { host: t.server.ipv4, port: NGINX_H1_PORT },
    h2: { host: t.server.ipv4, port: NGINX_H2_PORT },
    proxies: [],
    down: async () => {},
  }),
  mesh: upMesh,
  haproxy: (t) => upHaproxy(t, 'http'),
  'haproxy-tcp': (t) => upHaproxy(t, 'tcp'),
};

/** Brings `name` up and checks that both protocols get a 200 through it. */
export async function upPath(t: Topology, name: PathName): Promise<RunningPath> {
  const path = await paths[name](t);
  try {
    await answers(t, path.h1, 'h1');
    await answers(t, path.h2, 'h2');
  } catch (err) {
    await path.down().catch(() => {});
    // What the proxies said is usually the reason (a refused config, a port in use).
    const said = path.proxies.map((p) => `--- ${p.side}-side proxy ---\n${p.process.output().trim()}`).join('\n');
    throw new Error(`${(err as Error).message}${said ? `\n${said}` : ''}`, { cause: err });
  }
  return path;
}

/**
 * Both pods meshed as a workload would be: mesh-init's rules, mesh-proxy as uid 2102 at log
 * level info. The client still dials nginx's own address; iptables does the rest. Brought
 * down with mesh-init --cleanup, so the other paths run over unmeshed pods.
 */
async function upMesh(t: Topology): Promise<RunningPath> {
  const proxies: ProxyProcess[] = [];
  const down = async (): Promise<void> => {
    await Promise.allSettled(proxies.map((p) => p.process.stop()));
    for (const pod of [t.client, t.server]) await meshInit(pod, ['--cleanup']);
  };
  try {
    for (const [side, pod] of [['client', t.client], ['server', t.server]] as const) {
      await meshInit(pod);
      const proc = await startProxy(pod, { MESH_PROXY_LOG_LEVEL: 'info' });
      const pid = proc.child.pid!;
      pinProcess(t.pin, 'serve', pid);
      proxies.push({ side, pid, process: proc });
    }
  } catch (err) {
    await down().catch(() => {});
    throw err;
  }
  return {
    name: 'mesh',
    description: 'client pod → mesh-proxy outbound (iptables REDIRECT) → mesh-proxy inbound (REDIRECT) → nginx',
    h1: { host: t.server.ipv4, port: NGINX_H1_PORT },
    h2: { host: t.server.ipv4, port: NGINX_H2_PORT },
    proxies,
    down,
  };
}

/** Ports of the HAProxy hops; the client side listens on loopback like a local sidecar would. */
const HAPROXY_PORTS: Record<HaproxyMode, { h1: number; h2: number }> = {
  http: { h1: 10080, h2: 10081 },
  tcp: { h1: 10090, h2: 10091 },
};

async function upHaproxy(t: Topology, mode: HaproxyMode): Promise<RunningPath> {
  const port = HAPROXY_PORTS[mode];
  const server = startHaproxy(t.server, t.dir, `${mode}-server`, {
    mode,
    between: 'plain',
    h1: { bind: `${t.server.ipv4}:${port.h1}`, to: `127.0.0.1:${NGINX_H1_PORT}` },
    h2: { bind: `${t.server.ipv4}:${port.h2}`, to: `127.0.0.1:${NGINX_H2_PORT}` },
  }, t.pin);
  const client = startHaproxy(t.client, t.dir, `${mode}-client`, {
    mode,
    between: 'plain',
    h1: { bind: `127.0.0.1:${port.h1}`, to: `${t.server.ipv4}:${port.h1}` },
    h2: { bind: `127.0.0.1:${port.h2}`, to: `${t.server.ipv4}:${port.h2}` },
  }, t.pin);
  const procs = [client, server];
  return {
    name: mode === 'http' ? 'haproxy' : 'haproxy-tcp',
    description: `client pod → HAProxy 127.0.0.1 (mode ${mode}) → HAProxy in server pod (mode ${mode}) → nginx`,
    h1: { host: '127.0.0.1', port: port.h1 },
    h2: { host: '127.0.0.1', port: port.h2 },
    proxies: [
      { side: 'client', pid: client.child.pid!, process: client },
      { side: 'server', pid: server.child.pid!, process: server },
    ],
    down: async () => {
      await Promise.allSettled(procs.map((p) => p.stop()));
    },
  };
}
