// `mesh endpoints AUTHORITY`: what the destination service resolves an
// authority to, read from its stream's first answer, for debugging discovery
// (Linkerd's `linkerd diagnostics endpoints`). Exit 0 with a table, 1 when
// nobody knows the authority, 2 when the service cannot be asked (or the flags
// are wrong).
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { DESTINATION_GET_PATH, DESTINATION_PORT, type Update } from '../contract/destination.js';
import { destinationServerName } from '../controller/destination/names.js';
import { ApiClientError } from '../shared/api.js';
import { JsonStreamClient } from '../shared/api-stream.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { formatTable } from './output.js';

export type EndpointsOutput = 'table' | 'wide' | 'json';

export interface EndpointsOptions {
  authority: string;
  output: EndpointsOutput;
  destinationUrl: string;
  serverName: string;
  trustAnchorPem: string;
  namespace?: string;
  timeoutMs: number;
}

const COMMAND = 'mesh endpoints';
export const EXIT_NOT_FOUND = 1;
export const EXIT_UNREACHABLE = 2;

/** The first answer of the stream, or the reason there is none. */
function firstUpdate(o: EndpointsOptions): Promise<Update | ApiClientError> {
  return new Promise((resolve) => {
    const client = new JsonStreamClient({ url: o.destinationUrl, trustAnchorPem: o.trustAnchorPem, serverName: o.serverName, connectTimeoutMs: o.timeoutMs });
    let done = false;
    const finish = (v: Update | ApiClientError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.close();
      resolve(v);
    };
    const timer = setTimeout(() => finish(new ApiClientError('MESH_API_UNREACHABLE', `${o.destinationUrl}: no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    client.open(DESTINATION_GET_PATH, { authority: o.authority, ...(o.namespace === undefined ? {} : { contextNamespace: o.namespace }) }, {
      onMessage: (m) => finish(m as Update),
      onEnd: (e) => {
        if (e !== undefined) finish(e);
      },
    });
  });
}

export function endpointsTable(u: Extract<Update, { kind: 'snapshot' }>, wide: boolean): string {
  const headers = ['NAMESPACE', 'NAME', 'PORT', 'IP', 'IDENTITY', 'MESHED', 'OPAQUE', ...(wide ? ['ZONE', 'LABELS'] : [])];
  const rows = u.endpoints.map((e) => [
    e.namespace ?? '-',
    e.name ?? '-',
    String(e.port),
    e.address,
    e.identity ?? '-',
    e.identity === undefined ? 'no' : 'yes',
    u.settings.opaque || (e.opaquePorts ?? []).includes(e.port) ? 'yes' : 'no',
    ...(wide ? [e.zone ?? '-', Object.entries(e.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '-'] : []),
  ]);
  return formatTable(headers, rows);
}

export async function runEndpoints(o: EndpointsOptions, out: Out): Promise<number> {
  const answer = await firstUpdate(o);
  if (answer instanceof Error) {
    out.stderr(`${COMMAND}: cannot ask the destination service: ${answer.message} [${answer.code}]\n`);
    // A refusal (a malformed authority) is the invocation's fault; the rest, the service's reach: both exit 2.
    return EXIT_UNREACHABLE;
  }
  if (o.output === 'json') {
    out.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    return answer.kind === 'snapshot' ? 0 : EXIT_NOT_FOUND;
  }
  if (answer.kind === 'notFound') {
    out.stderr(`${COMMAND}: ${o.authority} is not known to the destination service (${answer.reason}); a proxy forwards it to the original address unchanged\n`);
    return EXIT_NOT_FOUND;
  }
  if (answer.endpoints.length === 0) {
    out.stderr(`${COMMAND}: ${o.authority} is known but has no ready endpoints\n`);
    return 0;
  }
  out.stdout(endpointsTable(answer, o.output === 'wide'));
  return 0;
}

interface Flags {
  output: EndpointsOutput;
  destinationUrl: string;
  serverName?: string;
  trustDomain: string;
  trustAnchors?: string;
  namespace?: string;
}

export function endpointsCommand(out: Out = processOut): Command {
  return new Command('endpoints')
    .description('Show what the destination service resolves AUTHORITY (name.ns.svc.cluster.local:port, host:port, address:port) to')
    .argument('<authority>', 'what a proxy would ask for')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'wide', 'json']).default('table'))
    .option('--destination-url <url>', 'the destination service', `https://127.0.0.1:${DESTINATION_PORT}`)
    .option('--server-name <name>', 'the name its certificate carries (default: from --trust-domain)')
    .option('--trust-domain <domain>', 'trust domain of the control plane', 'cluster.local')
    .option('--trust-anchors <file>', 'PEM trust anchors the service certificate must chain to (ca.crt of mesh identity init)')
    .option('-n, --namespace <ns>', 'complete short names as a pod in this namespace would')
    .exitOverride()
    .action(async (authority: string, f: Flags) => {
      try {
        if (f.trustAnchors === undefined) throw new UsageError('--trust-anchors: required (the ca.crt of `mesh identity init`)');
        let trustAnchorPem: string;
        try {
          trustAnchorPem = await readFile(f.trustAnchors, 'utf8');
        } catch (e) {
          throw new UsageError(`--trust-anchors: cannot read ${f.trustAnchors} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        process.exitCode = await runEndpoints(
          {
            authority,
            output: f.output,
            destinationUrl: f.destinationUrl,
            serverName: f.serverName ?? destinationServerName(f.trustDomain),
            trustAnchorPem,
            timeoutMs: 10_000,
            ...(f.namespace === undefined ? {} : { namespace: f.namespace }),
          },
          out,
        );
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
