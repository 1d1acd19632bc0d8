// Story-sized steps for end-to-end tests: mesh a pod, start the proxy, an app,
// a client; read the kernel's state. Everything runs inside lab pods.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { eventually, type Pod, type PodProcess } from './harness/index.js';
import { proxyNodeFlags } from '../proxy/runtime.js';
import { ADMIN_PATHS, adminUrl, PROXY_ENV, PROXY_PORTS, PROXY_UID as CONTRACT_UID } from '../contract/sidecar.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = {
  init: join(dist, 'cli', 'mesh-init.js'),
  proxy: join(dist, 'cli', 'mesh-proxy.js'),
  echo: join(dist, 'test', 'fixtures', 'echo-server.js'),
  client: join(dist, 'test', 'fixtures', 'tcp-client.js'),
};
export const node = process.execPath;

// Proxies keep serving after an error nobody handled (proxy/faults.ts): a test
// would no longer see that bug as a crash. So every proxy a test file started
// must have logged none by the end of the file. Only under the test runner:
// the bench starts proxies through this module too.
const started: PodProcess[] = [];
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    const faults = started.flatMap((p) => p.lines().filter((l) => l.includes(' ERROR internal error')));
    assert.deepEqual(faults, [], 'a proxy hit an error nobody handled (a bug)');
  });
}

/** A compiled test fixture (test/fixtures/NAME). */
export const fixture = (name: string): string => join(dist, 'test', 'fixtures', name);
export const PROXY_UID = CONTRACT_UID;

export async function meshInit(pod: Pod, args: string[] = []): Promise<void> {
  await pod.execOk(node, [bin.init, ...args]);
}

export interface ProxyStartOptions {
  /** RLIMIT_NOFILE, soft and hard, set by prlimit (which execs: the pid stays the proxy's). */
  nofile?: number;
}

/** The proxy as it runs in a pod: uid 2102, debug logs (one line per accepted connection). */
export async function startProxy(pod: Pod, env: Record<string, string> = {}, caps: string[] = [], opts: ProxyStartOptions = {}): Promise<PodProcess> {
  const argv = [node, ...proxyNodeFlags, bin.proxy];
  if (opts.nofile !== undefined) argv.unshift('prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--');
  const proc = pod.spawn(argv[0]!, argv.slice(1), {
    uid: PROXY_UID,
    caps,
    env: { [PROXY_ENV.logLevel]: 'debug', ...env },
  });
  started.push(proc);
  await proc.waitForLine(new RegExp(`listening addr=\\S+:${PROXY_PORTS.outbound}`));
  return proc;
}

/** Waits for the proxies' /ready (with identity: certified). */
export async function proxiesReady(...pods: Pod[]): Promise<void> {
  for (const pod of pods) {
    await eventually(async () => (await pod.exec('curl', ['-sf', '--max-time', '2', adminUrl(ADMIN_PATHS.ready)])).code === 0, { what: `${pod.name}'s proxy ready` });
  }
}

export async function startEcho(pod: Pod, addrs: string[]): Promise<PodProcess> {
  const proc = pod.spawn(node, [bin.echo, ...addrs]);
  await proc.waitForLine(/^listening/);
  return proc;
}

export interface ClientResult {
  ok: boolean;
  greeting?: string;
  error?: string;
  sent?: number;
  received?: number;
  local?: string;
}

/** Connects from `pod` to host:port, sends `size` random bytes, reports what came back. */
export async function tcpClient(pod: Pod, host: string, port: number, size = 65536, uid?: number): Promise<ClientResult> {
  const r = await pod.exec(node, [bin.client, host, String(port), String(size)], uid === undefined ? {} : { uid });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    throw new Error(`client printed no result (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}

/** "peer=1.2.3.4:5678 local=..." → the peer's address. */
export function greetingPeer(greeting = ''): string {
  const m = /^peer=(\S+):\d+ /.exec(greeting);
  return m?.[1] ?? '';
}

/**
 * iptables-save of the tables mesh-init manages, compared as rule text: no
 * comments or counters, and a table that holds nothing but empty built-in
 * chains counts as absent (nft keeps an emptied table listed).
 */
export async function ruleset(pod: Pod, family: 4 | 6 = 4, backend: 'nft' | 'legacy' = 'nft'): Promise<string> {
  const cmd = `${family === 4 ? 'iptables' : 'ip6tables'}-${backend}-save`;
  const r = await pod.execOk(cmd, []);
  const tables: string[] = [];
  for (const block of r.stdout.split(/^(?=\*)/m)) {
    const lines = block.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]$/, ''));
    const interesting = lines.some((l) => l.startsWith('-A ') || (l.startsWith(':') && !/^:[A-Z]+ ACCEPT $/.test(l)));
    if (lines[0]?.startsWith('*') && interesting) tables.push(lines.join('\n'));
  }
  return tables.join('\n');
}

export async function ipRules(pod: Pod, family: 4 | 6 = 4): Promise<string> {
  const rules = await pod.execOk('ip', [`-${family}`, 'rule', 'show']);
  const routes = await pod.exec('ip', [`-${family}`, 'route', 'show', 'table', 'all']);
  return `${rules.stdout}\n${routes.stdout.split('\n').filter((l) => !/proto kernel|^multicast|^fe80|^local fe80/.test(l)).join('\n')}`;
}
