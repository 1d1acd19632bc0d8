// The bench's lab: two pods on a private bridge, `client` (where the load comes from) and
// `server` (nginx). Every path below runs over these same two pods and the same nginx, one
// path at a time, so the paths differ only in what sits between the client and nginx. A third
// pod, `control`, holds the mesh's control plane (the identity and destination services) when a path needs it:
// off the measured pods, so its traffic never crosses the proxies being measured.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, Lab, type Pod, type PodProcess } from '../lab/index.js';
import { startBulkServer } from './bulk.js';
import { startNginx } from './nginx.js';
import type { Pinning } from './pin.js';

export interface Endpoint {
  host: string;
  port: number;
}

export interface Topology {
  lab: Lab;
  client: Pod;
  server: Pod;
  /** Unmeshed; for the identity service, started and stopped by the paths that use it. */
  control: Pod;
  nginx: PodProcess;
  /** The opaque bulk transfer's receiving end (bench/bulk.ts), when the plan has one. */
  bulk?: { server: PodProcess; bytes: number };
  pin: Pinning | undefined;
  /** Scratch directory for configs and logs (pods share the host's filesystem). */
  dir: string;
  destroy(): Promise<void>;
}

export async function createTopology(pin: Pinning | undefined, bulkBytes = 0): Promise<Topology> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-bench-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  // The lab removes its namespaces at exit (Ctrl-C included); the scratch directory goes too.
  process.once('exit', removeDir);
  const lab = await Lab.create();
  const destroy = async (): Promise<void> => {
    try {
      await lab.destroy();
    } finally {
      removeDir();
      process.off('exit', removeDir);
    }
  };
  try {
    const client = await lab.pod('client');
    const server = await lab.pod('server');
    const control = await lab.pod('control');
    const nginx = startNginx(server, dir, pin);
    const t: Topology = { lab, client, server, control, nginx, pin, dir, destroy };
    if (bulkBytes > 0) {
      const bulk = startBulkServer(server, pin, bulkBytes);
      await bulk.waitForLine(/^listening/);
      t.bulk = { server: bulk, bytes: bulkBytes };
    }
    await answers(t, { host: server.ipv4, port: 8080 }, 'h1');
    return t;
  } catch (err) {
    await destroy().catch(() => {});
    throw err;
  }
}

/**
 * Waits until a GET through `target` from the client pod returns 200, with HTTP/1.1 or with
 * prior-knowledge HTTP/2; the error says what came back instead.
 */
export async function answers(t: Topology, target: Endpoint, proto: 'h1' | 'h2', timeoutMs = 10_000): Promise<void> {
  const url = `http://${target.host}:${target.port}/`;
  await eventually(
    async () => {
      const r = await t.client.exec('curl', [
        '-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '2',
        ...(proto === 'h2' ? ['--http2-prior-knowledge'] : ['--http1.1']), url,
      ]);
      const want = proto === 'h2' ? '200 2' : '200 1.1';
      if (r.stdout.trim() !== want) throw new Error(`curl ${url} (${proto}): "${r.stdout.trim()}" ${r.stderr.trim()}`);
    },
    { timeoutMs, what: `${url} to answer 200 over ${proto}` },
  );
}

/** The versions that produced the numbers, for the results file. */
export function toolVersions(): Record<string, string> {
  const version = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
    } catch (err) {
      // nginx -v prints to stderr; wrk -v exits 1 after printing its version.
      const e = err as { stdout?: string; stderr?: string };
      return `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n')[0]!.trim() || 'unknown';
    }
  };
  return {
    node: process.version,
    kernel: version('uname', ['-r']),
    wrk: version('wrk', ['-v']),
    h2load: version('h2load', ['--version']),
    nginx: version('sh', ['-c', 'nginx -v 2>&1']),
    haproxy: version('haproxy', ['-v']),
  };
}
