// `mesh-controller tap`: the tap service (controller/tap) as a process.
// Flags → typed options → run until told to stop (SIGTERM, SIGINT).
import { Command, Option } from 'commander';
import { TAP_SERVICE_PORT } from '../contract/tap.js';
import { startTapService } from '../controller/tap/index.js';
import { FileTargets } from '../controller/tap/file-targets.js';
import { KubernetesTargets } from '../controller/tap/kubernetes-targets.js';
import { Log, type LogLevel } from '../shared/log.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseDuration, parseListenAddress } from './flags.js';

const COMMAND = 'mesh-controller tap';

interface Flags {
  dir: string;
  listen: string;
  source: string;
  kubeconfig?: string;
  trustDomain: string;
  leafLifetime: string;
  proxyTapPort: string;
  logLevel: string;
}

function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export function controllerTapCommand(out: Out = processOut): Command {
  return new Command('tap')
    .description('Merge live requests from the proxies of a resource: POST /tap.mesh.io/v1/tap over HTTP/2 TLS, for mesh tap and the dashboard')
    .requiredOption('--dir <dir>', 'identity directory (mesh identity init): the tap service issues its own mesh-tap identity from its issuer')
    .requiredOption('--source <file:PATH|kubernetes>', 'where pods are found: the Kubernetes API, or file:PATH (the destination service\'s services file)')
    .option('--kubeconfig <path>', '--source kubernetes outside a cluster (default: KUBECONFIG, else the pod\'s service account)')
    .option('--listen <addr:port>', 'address to serve on', `0.0.0.0:${TAP_SERVICE_PORT}`)
    .option('--trust-domain <domain>', 'trust domain', 'cluster.local')
    .option('--leaf-lifetime <duration>', 'lifetime of the tap service\'s own certificate', '24h')
    .option('--proxy-tap-port <port>', 'the proxies\' tap port', '4190')
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        const m = /^file:(.+)$/.exec(f.source);
        if (m === null && f.source !== 'kubernetes') throw new UsageError(`--source: "${f.source}" is neither kubernetes nor file:PATH`);
        if (f.kubeconfig !== undefined && f.source !== 'kubernetes') throw new UsageError('--kubeconfig: only read by --source kubernetes');
        const port = Number(f.proxyTapPort);
        if (!(port >= 1 && port <= 65535)) throw new UsageError(`--proxy-tap-port: "${f.proxyTapPort}" is not a port`);
        const listen = parseListenAddress('--listen', f.listen);
        const log = new Log(f.logLevel as LogLevel);
        const service = await startTapService(
          { dir: f.dir, host: listen.host, port: listen.port, trustDomain: f.trustDomain, leafLifetimeMs: parseDuration('--leaf-lifetime', f.leafLifetime), proxyTapPort: port },
          { log, targets: m === null ? await KubernetesTargets.create({ trustDomain: f.trustDomain, ...(f.kubeconfig === undefined ? {} : { kubeconfig: f.kubeconfig }) }) : new FileTargets(m[1]!, f.trustDomain) },
        );
        await untilSignalled();
        log.info('stopping');
        await service.close();
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
