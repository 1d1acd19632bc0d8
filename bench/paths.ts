// The ways from the client pod to nginx that the bench compares, chosen by name. Bringing a
// path up returns where the client connects (HTTP/1.1 and h2c) and which proxy processes to
// watch; bringing it down leaves the pods as they were, ready for the next path.
import type { PodProcess } from '../lab/index.js';
import { BULK_PORT } from './bulk.js';
import { upHaproxy } from './haproxy-path.js';
import { upMesh } from './mesh-path.js';
import { NGINX_H1_PORT, NGINX_H2_PORT } from './nginx.js';
import { answers, type Endpoint, type Topology } from './topology.js';

/** Every path, in the order they are measured (direct, the baseline, first). */
export const PATH_NAMES = [
  'direct',
  'mesh',
  'mesh-static',
  'mesh-tap',
  'mesh-plain',
  'haproxy-mtls',
  'haproxy-mtls-h1',
  'haproxy-tcp-mtls',
  'haproxy',
  'haproxy-tcp',
] as const;
export type PathName = (typeof PATH_NAMES)[number];

/**
 * What `npm run bench` measures unless told otherwise: the mesh as it runs (mTLS between the
 * proxies), HAProxy doing the same (mode http for requests; mode tcp for the opaque bulk
 * transfer), and the plaintext HAProxy paths earlier runs reported.
 */
export const DEFAULT_PATHS: readonly PathName[] = ['direct', 'mesh', 'mesh-static', 'haproxy-mtls', 'haproxy-tcp-mtls', 'haproxy', 'haproxy-tcp'];

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
  /** Where the opaque bulk transfer connects (bench/bulk.ts); paths that parse HTTP have none. */
  bulk?: Endpoint;
  proxies: ProxyProcess[];
  /**
   * After the runs: checks that the path did what its name claims (e.g. every request crossed
   * mTLS); returns what it did not, as problems of this path's numbers.
   */
  confirm?(): Promise<string[]>;
  down(): Promise<void>;
}

const paths: Record<PathName, (t: Topology) => Promise<RunningPath>> = {
  direct: async (t) => ({
    name: 'direct',
    description: 'client pod → nginx',
    h1: { host: t.server.ipv4, port: NGINX_H1_PORT },
    h2: { host: t.server.ipv4, port: NGINX_H2_PORT },
    bulk: { host: t.server.ipv4, port: BULK_PORT },
    proxies: [],
    down: async () => {},
  }),
  mesh: (t) => upMesh(t, 'mesh', { identity: true, discovery: true }),
  'mesh-static': (t) => upMesh(t, 'mesh-static', { identity: true, discovery: false }),
  'mesh-tap': (t) => upMesh(t, 'mesh-tap', { identity: true, discovery: true, tap: true }),
  'mesh-plain': (t) => upMesh(t, 'mesh-plain', { identity: false, discovery: false }),
  'haproxy-mtls': (t) => upHaproxy(t, 'haproxy-mtls', { mode: 'http', between: 'mtls', h1As: 'h2', ports: { h1: 10100, h2: 10101 } }),
  'haproxy-mtls-h1': (t) => upHaproxy(t, 'haproxy-mtls-h1', { mode: 'http', between: 'mtls', h1As: 'http/1.1', ports: { h1: 10110, h2: 10111 } }),
  'haproxy-tcp-mtls': (t) => upHaproxy(t, 'haproxy-tcp-mtls', { mode: 'tcp', between: 'mtls', ports: { h1: 10120, h2: 10121, bulk: 10122 } }),
  haproxy: (t) => upHaproxy(t, 'haproxy', { mode: 'http', between: 'plain', ports: { h1: 10080, h2: 10081 } }),
  'haproxy-tcp': (t) => upHaproxy(t, 'haproxy-tcp', { mode: 'tcp', between: 'plain', ports: { h1: 10090, h2: 10091, bulk: 10092 } }),
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
