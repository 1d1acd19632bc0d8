// `mesh-controller destination`: the destination service (controller/destination)
// as a process. Flags → typed options → run until told to stop (SIGTERM, SIGINT).
import { Command, Option } from 'commander';
import { DESTINATION_PORT } from '../contract/destination.js';
import { DEFAULT_CLUSTER_DOMAIN, parseSourceSpec, startDestinationService, type SourceSpec } from '../controller/destination/index.js';
import { findKubernetesCredentials } from '../controller/identity/index.js';
import { Log, type LogLevel } from '../shared/log.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseListenAddress, type ListenAddress } from './flags.js';

export interface ControllerDestinationOptions {
  dir: string;
  listen: ListenAddress;
  sources: SourceSpec[];
  trustDomain: string;
  clusterDomain: string;
}

export interface ControllerDestinationDeps {
  log: Log;
  stop: Promise<void>;
}

export const defaults = {
  listen: `0.0.0.0:${DESTINATION_PORT}`,
  trustDomain: 'cluster.local',
  clusterDomain: DEFAULT_CLUSTER_DOMAIN,
  logLevel: 'info',
} as const;

const COMMAND = 'mesh-controller destination';

export async function runControllerDestination(o: ControllerDestinationOptions, deps: ControllerDestinationDeps, out: Out): Promise<number> {
  let service;
  try {
    service = await startDestinationService(
      { dir: o.dir, host: o.listen.host, port: o.listen.port, sources: o.sources, trustDomain: o.trustDomain, clusterDomain: o.clusterDomain },
      { log: deps.log },
    );
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    // A services file that does not parse is the operator's input to fix, like a bad flag.
    if (code === 'MESH_DESTINATION_FILE' || code === 'MESH_DESTINATION_SOURCE') {
      out.stderr(`${COMMAND}: ${(e as Error).message} [${String(code)}]\n`);
      return 2;
    }
    return reportFailure(COMMAND, e, out);
  }
  await deps.stop;
  deps.log.info('stopping');
  await service.close();
  return 0;
}

interface Flags {
  dir: string;
  listen: string;
  source: string[];
  trustDomain: string;
  clusterDomain: string;
  kubeconfig?: string;
  logLevel: string;
}

function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export function controllerDestinationCommand(out: Out = processOut): Command {
  return new Command('destination')
    .description('Serve service discovery: POST /destination.mesh.io/v1/get over HTTP/2 TLS (a stream of endpoint sets), plus /live and /ready')
    .requiredOption('--dir <dir>', 'identity directory (mesh identity init): ca.crt, issuer.crt, issuer.key; the service issues its own certificate from it')
    .option('--source <source>', 'file:PATH (YAML services file) or kubernetes; repeat for several, the first that knows an authority answers', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--listen <addr:port>', 'address to serve on', defaults.listen)
    .option('--trust-domain <domain>', 'trust domain of workload identities', defaults.trustDomain)
    .option('--cluster-domain <domain>', 'completes short service names', defaults.clusterDomain)
    .option('--kubeconfig <path>', "kubernetes source outside a cluster (default: KUBECONFIG, else the pod's service account)")
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']).default(defaults.logLevel))
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        if (f.source.length === 0) throw new UsageError('--source: give at least one (file:PATH or kubernetes)');
        const sources = f.source.map((s) => {
          try {
            return parseSourceSpec(s, f.kubeconfig);
          } catch (e) {
            throw new UsageError(`--source: ${(e as Error).message}`);
          }
        });
        if (sources.some((s) => s.kind === 'kubernetes')) {
          const found = findKubernetesCredentials({ kubeconfig: f.kubeconfig });
          if (found.kind === 'none') throw new UsageError(`--source kubernetes: ${found.reason}`);
        } else if (f.kubeconfig !== undefined) {
          throw new UsageError('--kubeconfig: only read by --source kubernetes');
        }
        const options: ControllerDestinationOptions = {
          dir: f.dir,
          listen: parseListenAddress('--listen', f.listen),
          sources,
          trustDomain: f.trustDomain,
          clusterDomain: f.clusterDomain.replace(/^\.+|\.+$/g, ''),
        };
        const log = new Log(f.logLevel as LogLevel);
        process.exitCode = await runControllerDestination(options, { log, stop: untilSignalled() }, out);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
