// `mesh-controller identity`: the identity service (controller/identity) as a
// process. Flags → typed options → run until told to stop (SIGTERM, SIGINT).
import { Command, Option } from 'commander';
import { findKubernetesCredentials, startIdentityService, tokenReviewerNames, type TokenReviewerName } from '../controller/identity/index.js';
import { Log, type LogLevel } from '../shared/log.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseChoice, parseDuration, parseListenAddress, type ListenAddress } from './flags.js';

export interface ControllerIdentityOptions {
  dir: string;
  listen: ListenAddress;
  leafLifetimeMs: number;
  trustDomain: string;
  tokenReviewer: TokenReviewerName;
  /** --token-reviewer kubernetes run outside a cluster. */
  kubeconfig?: string;
}

export interface ControllerIdentityDeps {
  log: Log;
  /** Resolves when the service should stop. */
  stop: Promise<void>;
}

export const defaults = {
  listen: '0.0.0.0:8080',
  leafLifetime: '24h',
  trustDomain: 'cluster.local',
  tokenReviewer: 'mesh',
  logLevel: 'info',
} as const;

const COMMAND = 'mesh-controller identity';

export async function runControllerIdentity(o: ControllerIdentityOptions, deps: ControllerIdentityDeps, out: Out): Promise<number> {
  let service;
  try {
    service = await startIdentityService(
      { dir: o.dir, host: o.listen.host, port: o.listen.port, trustDomain: o.trustDomain, leafLifetimeMs: o.leafLifetimeMs, tokenReviewer: o.tokenReviewer, kubeconfig: o.kubeconfig },
      { log: deps.log },
    );
  } catch (e) {
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
  leafLifetime: string;
  trustDomain: string;
  tokenReviewer: string;
  kubeconfig?: string;
  logLevel: string;
}

/** Checked with the flags, so that a controller with nothing to ask the API server with says so at once (exit 2). */
function checkKubeconfig(tokenReviewer: TokenReviewerName, kubeconfig: string | undefined): void {
  if (tokenReviewer !== 'kubernetes') {
    if (kubeconfig !== undefined) throw new UsageError('--kubeconfig: only read by --token-reviewer kubernetes');
    return;
  }
  const found = findKubernetesCredentials({ kubeconfig });
  if (found.kind === 'none') throw new UsageError(`--token-reviewer kubernetes: ${found.reason}`);
}

function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export function controllerIdentityCommand(out: Out = processOut): Command {
  return new Command('identity')
    .description('Serve workload certificates: POST /identity.mesh.io/v1/certify over HTTP/2 TLS, plus /live and /ready')
    .requiredOption('--dir <dir>', 'identity directory (mesh identity init): ca.crt, issuer.crt, issuer.key, token.pub (mesh reviewer)')
    .option('--listen <addr:port>', 'address to serve on', defaults.listen)
    .option('--leaf-lifetime <duration>', 'lifetime of issued certificates', defaults.leafLifetime)
    .option('--trust-domain <domain>', 'trust domain of issued names', defaults.trustDomain)
    .addOption(
      new Option('--token-reviewer <name>', "who vouches for tokens: mesh = tokens from `mesh identity token`; kubernetes = the API server's TokenReview")
        .choices(tokenReviewerNames)
        .default(defaults.tokenReviewer),
    )
    .option('--kubeconfig <path>', "kubernetes reviewer outside a cluster: the API server and credentials (default: KUBECONFIG, else the pod's service account)")
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']).default(defaults.logLevel))
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        const options: ControllerIdentityOptions = {
          dir: f.dir,
          listen: parseListenAddress('--listen', f.listen),
          leafLifetimeMs: parseDuration('--leaf-lifetime', f.leafLifetime),
          trustDomain: f.trustDomain,
          tokenReviewer: parseChoice('--token-reviewer', f.tokenReviewer, tokenReviewerNames),
          kubeconfig: f.kubeconfig,
        };
        checkKubeconfig(options.tokenReviewer, options.kubeconfig);
        const log = new Log(f.logLevel as LogLevel);
        process.exitCode = await runControllerIdentity(options, { log, stop: untilSignalled() }, out);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
