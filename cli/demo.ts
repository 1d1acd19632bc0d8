// `mesh demo`: builds a two-pod app on this host (network namespaces) and a
// control-plane pod running the identity service, meshes both app pods with
// mesh-init and mesh-proxy (each certified as its own workload identity, mTLS
// between them), sends traffic, and shows what the proxies saw. Everything it
// makes is removed when it ends.
import { Command, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { eventually, Lab, type Pod, type PodProcess } from '../lab/index.js';
import { MeshIdentity } from '../lab/identity.js';
import { printTable, type Output } from './output.js';
import { statCells, statHeaders, statRow } from './stat.js';
import { proxyNodeFlags } from '../proxy/runtime.js';
import { ADMIN_PATHS, adminUrl, PROXY_ENV, PROXY_PORTS, PROXY_UID } from '../contract/sidecar.js';

const here = dirname(fileURLToPath(import.meta.url));
const script = (name: string): string => join(here, name);
const node = process.execPath;

interface DemoOptions {
  requests: string;
  keep: boolean;
  output: Output;
}

interface Flow {
  pod: string;
  direction: string;
  src: string;
  dst: string;
  protocol: string;
  tx: number;
  rx: number;
  tls: string;
  /** The other proxy's proven identity (server_id outbound, client_id inbound). */
  peer: string;
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function meshPod(pod: Pod, env: Record<string, string>): Promise<PodProcess> {
  await pod.execOk(node, [script('mesh-init.js')]);
  const proxy = pod.spawn(node, [...proxyNodeFlags, script('mesh-proxy.js')], { uid: PROXY_UID, env: { [PROXY_ENV.logLevel]: 'debug', ...env } });
  await proxy.waitForLine(new RegExp(`listening addr=\\S+:${PROXY_PORTS.outbound}`));
  // Ready once certified by the identity service.
  await eventually(async () => (await pod.exec('curl', ['-sf', '--max-time', '1', adminUrl(ADMIN_PATHS.ready)])).code === 0, { timeoutMs: 15_000, what: `${pod.name}'s proxy ready (certified)` });
  return proxy;
}

/** Closed connections, read back from the proxy's debug log. */
function flows(pod: string, proxy: PodProcess): Flow[] {
  const out: Flow[] = [];
  for (const line of proxy.lines()) {
    const m = /DEBUG closed direction=(\S+) src=(\S+) dst=(\S+) tx=(\d+) rx=(\d+) protocol=(\S+) tls=(\S+)(?: (?:server_id|client_id)=(\S+))?/.exec(line);
    if (m) out.push({ pod, direction: m[1]!, src: m[2]!, dst: m[3]!, tx: Number(m[4]), rx: Number(m[5]), protocol: m[6]!, tls: m[7]!, peer: m[8] ?? '-' });
  }
  return out;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const requests = Number(o.requests);
  if (!Number.isInteger(requests) || requests < 1 || requests > 10_000) {
    process.stderr.write(`mesh demo: --requests: "${o.requests}" is not a whole number from 1 to 10000\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('mesh demo: needs root (it creates network namespaces and iptables rules)\n');
    return 1;
  }
  const lab = await Lab.create();
  let identity: MeshIdentity | undefined;
  try {
    const control = await lab.pod('mesh');
    const web = await lab.pod('web');
    const api = await lab.pod('api');
    progress(`pod/mesh created (${control.ipv4}), pod/web created (${web.ipv4}), pod/api created (${api.ipv4}) in namespaces ${lab.prefix}-*`);
    identity = await MeshIdentity.create();
    await identity.startService(control);
    progress(`trust anchor and issuer created (${identity.dir}); identity service running in pod/mesh`);
    const apiId = identity.name('default', 'api');
    // Until discovery serves it, web's proxy is told which destinations are meshed, and as whom.
    const pair = await identity.meshedPair(control, 'default', 'web', api, 'api');
    const apiProxy = await meshPod(api, pair.server);
    const webProxy = await meshPod(web, pair.client);
    progress(`mesh-init applied and mesh-proxy running (uid ${PROXY_UID}) in both pods, certified as ${identity.name('default', 'web')} and ${apiId}; web → api is mTLS`);
    const app = api.spawn(node, [script('demo-app.js'), '8080', 'api']);
    await app.waitForLine(/^listening/);
    progress(`api serving HTTP on :8080; sending ${requests} request(s) web → ${api.ipv4}:8080 with curl`);

    let ok = 0;
    let answered = 0;
    let lastBody = '';
    const started = Date.now();
    for (let i = 0; i < requests; i++) {
      // Every 7th request asks for a failure, so the success rate has something to show.
      const path = i % 7 === 6 ? `/flaky/${i}` : `/hello/${i}`;
      const r = await web.exec('curl', ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', `http://${api.ipv4}:8080${path}`], { uid: 1000 });
      const lines = r.stdout.trimEnd().split('\n');
      const code = lines.at(-1);
      if (code === '200') ok++;
      if (code !== undefined && code !== '000') answered++;
      lastBody = lines.slice(0, -1).join('\n');
    }
    const seconds = (Date.now() - started) / 1000;
    progress(`${answered}/${requests} answered (${ok} with 200, the rest the app's own 503s); last: ${lastBody}`);
    const metricsOf = async (pod: Pod): Promise<string> => (await pod.execOk('curl', ['-sS', '--max-time', '5', adminUrl(ADMIN_PATHS.metrics)])).stdout;
    const stats = [statRow('api', await metricsOf(api), seconds), statRow('web', await metricsOf(web), seconds)];

    const seen = (): Flow[] => [...flows('web', webProxy), ...flows('api', apiProxy)];
    // A proxy logs a connection once both of its sides have closed, a moment after curl returns.
    await eventually(() => seen().length >= requests, { timeoutMs: 2000, what: 'proxy connection logs' }).catch(() => {});
    if (o.output === 'json') {
      process.stdout.write(`${JSON.stringify({ requests, answered, ok, stat: stats, connections: seen() }, null, 2)}\n`);
    } else {
      process.stdout.write('\n');
      printTable(statHeaders, stats.map(statCells));
      process.stdout.write('\n');
      printTable(
        ['POD', 'DIRECTION', 'SRC', 'DST', 'PROTOCOL', 'TLS', 'PEER_IDENTITY', 'BYTES_IN', 'BYTES_OUT'],
        seen().slice(-10).map((f) => [f.pod, f.direction, f.src, f.dst, f.protocol, f.tls, f.peer, String(f.tx), String(f.rx)]),
      );
      progress('\nstat: from each proxy\'s /metrics (inbound side); connections: the last ones the proxies closed');
    }
    if (o.keep) {
      progress(`pods stay up: try \`ip netns exec ${web.ns} curl http://${api.ipv4}:8080/\`; Ctrl-C removes everything`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    return answered === requests ? 0 : 1;
  } finally {
    await lab.destroy();
    await identity?.destroy();
    progress('demo pods and certificates removed');
  }
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('Run a small meshed app on this host (two network-namespace pods), send traffic, show what the proxies saw')
    .option('--requests <n>', 'requests to send', '10')
    .option('--keep', 'keep the pods running until Ctrl-C', false)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (opts: DemoOptions) => {
      process.exitCode = await runDemo(opts);
    });
}
