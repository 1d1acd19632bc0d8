// `mesh identity token`: a service-account token signed with DIR/token.key, for
// workloads the identity service cannot ask Kubernetes about (VMs, bare hosts,
// the local demo). The token alone goes to stdout: `TOKEN=$(mesh identity token …)`.
import { Command } from 'commander';
import { importTokenSigningKey, signToken, tokenSubject } from '../ca/index.js';
import { readIdentityFile } from '../controller/identity/files.js';
import { processOut, reportFailure, type Out } from './command.js';
import { parseDuration } from './flags.js';

export interface IdentityTokenOptions {
  namespace: string;
  serviceAccount: string;
  dir: string;
  ttlMs: number;
}

export interface IdentityTokenDeps {
  now(): Date;
}

export const defaults = { dir: 'mesh-identity', ttl: '720h' } as const;

const COMMAND = 'mesh identity token';

export async function runIdentityToken(o: IdentityTokenOptions, deps: IdentityTokenDeps, out: Out): Promise<number> {
  try {
    const subject = tokenSubject(o.namespace, o.serviceAccount);
    const privateKey = await importTokenSigningKey(await readIdentityFile(o.dir, 'tokenKey'));
    const now = deps.now();
    const token = await signToken({ privateKey, namespace: o.namespace, serviceAccount: o.serviceAccount, ttlMs: o.ttlMs, now });
    out.stdout(`${token}\n`);
    const expires = new Date(now.getTime() + o.ttlMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
    out.stderr(`token for ${subject} created (expires ${expires})\n`);
    return 0;
  } catch (e) {
    return reportFailure(COMMAND, e, out);
  }
}

interface Flags {
  namespace: string;
  serviceAccount: string;
  dir: string;
  ttl: string;
}

export function identityTokenCommand(deps: IdentityTokenDeps = { now: () => new Date() }, out: Out = processOut): Command {
  return new Command('token')
    .description('Print a service-account token for a workload off Kubernetes, signed with the token key of DIR')
    .requiredOption('--namespace <ns>', "the workload's namespace")
    .requiredOption('--service-account <name>', "the workload's service account")
    .option('--dir <dir>', 'identity directory made by mesh identity init', defaults.dir)
    .option('--ttl <duration>', 'token lifetime', defaults.ttl)
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        const options = { namespace: f.namespace, serviceAccount: f.serviceAccount, dir: f.dir, ttlMs: parseDuration('--ttl', f.ttl) };
        process.exitCode = await runIdentityToken(options, deps, out);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
