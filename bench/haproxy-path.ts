// The HAProxy paths: an instance on loopback in the client pod (as a local sidecar would
// listen) and one in the server pod, in mode http or tcp, plaintext or mTLS between them.
import { join } from 'node:path';
import { writeBenchCerts, type BenchCerts } from './certs.js';
import { startHaproxy, type Between, type H1Between, type HaproxyMode, type HopTls } from './haproxy.js';
import { BULK_PORT } from './bulk.js';
import { NGINX_H1_PORT, NGINX_H2_PORT } from './nginx.js';
import type { PathName, RunningPath } from './paths.js';
import type { Topology } from './topology.js';

export interface HaproxyVariant {
  mode: HaproxyMode;
  between: Between;
  /** mode http over mTLS: what the HTTP/1.1 hop speaks between the proxies; h2 (the default) as the mesh does. */
  h1As?: H1Between;
  /** Ports of the two hops, the same on both sides; distinct per variant. mode tcp: a third, for the opaque bulk transfer. */
  ports: { h1: number; h2: number; bulk?: number };
}

type Security = { between: 'plain' } | { between: 'mtls'; tls: HopTls };

export async function upHaproxy(t: Topology, name: PathName, v: HaproxyVariant): Promise<RunningPath> {
  const certs = v.between === 'mtls' ? await writeBenchCerts(join(t.dir, `tls-${name}`)) : undefined;
  const security = (side: 'client' | 'server'): Security => {
    if (!certs) return { between: 'plain' };
    return side === 'client'
      ? { between: 'mtls', tls: { side, crt: certs.client.pem, caFile: certs.anchor, serverName: certs.server.name, h1As: v.h1As ?? 'h2' } }
      : { between: 'mtls', tls: { side, crt: certs.server.pem, caFile: certs.anchor } };
  };
  const peer = (port: number): string => `${t.server.ipv4}:${port}`;
  const server = startHaproxy(t.server, t.dir, `${name}-server`, {
    mode: v.mode,
    h1: { bind: peer(v.ports.h1), to: `127.0.0.1:${NGINX_H1_PORT}` },
    h2: { bind: peer(v.ports.h2), to: `127.0.0.1:${NGINX_H2_PORT}` },
    ...(v.ports.bulk !== undefined && { bulk: { bind: peer(v.ports.bulk), to: `127.0.0.1:${BULK_PORT}` } }),
    ...security('server'),
  }, t.pin);
  const client = startHaproxy(t.client, t.dir, `${name}-client`, {
    mode: v.mode,
    h1: { bind: `127.0.0.1:${v.ports.h1}`, to: peer(v.ports.h1) },
    h2: { bind: `127.0.0.1:${v.ports.h2}`, to: peer(v.ports.h2) },
    ...(v.ports.bulk !== undefined && { bulk: { bind: `127.0.0.1:${v.ports.bulk}`, to: peer(v.ports.bulk) } }),
    ...security('client'),
  }, t.pin);
  const procs = [client, server];
  return {
    name,
    description: `client pod → HAProxy 127.0.0.1 (mode ${v.mode}) → ${between(v)} → HAProxy in server pod (mode ${v.mode}) → nginx`,
    h1: { host: '127.0.0.1', port: v.ports.h1 },
    h2: { host: '127.0.0.1', port: v.ports.h2 },
    ...(v.ports.bulk !== undefined && { bulk: { host: '127.0.0.1', port: v.ports.bulk } }),
    proxies: [
      { side: 'client', pid: client.child.pid!, process: client },
      { side: 'server', pid: server.child.pid!, process: server },
    ],
    ...(certs && { confirm: () => serverSideRequiresMtls(t, certs, v) }),
    down: async () => {
      await Promise.allSettled(procs.map((p) => p.stop()));
    },
  };
}

function between(v: HaproxyVariant): string {
  if (v.between === 'plain') return 'plaintext';
  if (v.mode === 'tcp') return 'mTLS (one TLS connection per client connection)';
  return (v.h1As ?? 'h2') === 'h2' ? 'mTLS, HTTP/1.1 and h2c both carried as h2' : 'mTLS, HTTP/1.1 as HTTP/1.1, h2c as h2';
}

/**
 * The server side's HTTP/1.1 hop, tried from the client pod three ways: plaintext and TLS
 * without a client certificate must be refused, TLS with the client's leaf must get a 200.
 * The path answered through the client side, so the client side spoke mTLS too.
 */
async function serverSideRequiresMtls(t: Topology, certs: BenchCerts, v: HaproxyVariant): Promise<string[]> {
  const name = certs.server.name;
  const port = v.ports.h1;
  const curl = async (url: string, extra: string[]): Promise<string> => {
    const r = await t.client.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '2', ...extra, url]);
    return `${r.stdout.trim()}${r.code === 0 ? '' : ` (curl exit ${r.code}: ${r.stderr.trim()})`}`;
  };
  const tls = ['--cacert', certs.anchor, '--resolve', `${name}:${port}:${t.server.ipv4}`];
  const https = `https://${name}:${port}/`;
  const problems: string[] = [];
  const plain = await curl(`http://${t.server.ipv4}:${port}/`, ['--http1.1']);
  if (plain.startsWith('200')) problems.push(`the server-side HAProxy answered plaintext HTTP: ${plain}`);
  const anonymous = await curl(https, tls);
  if (anonymous.startsWith('200')) problems.push(`the server-side HAProxy answered a TLS client without a certificate: ${anonymous}`);
  const mutual = await curl(https, [...tls, '--cert', certs.client.chain, '--key', certs.client.key]);
  if (!mutual.startsWith('200')) problems.push(`the server-side HAProxy refused the client's certificate: ${mutual}`);
  return problems;
}
