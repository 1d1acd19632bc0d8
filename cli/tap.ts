// `mesh tap RESOURCE`: live requests through the proxies of a resource, from
// the tap service, in the line format operators know from `linkerd viz tap`:
//   req id=… proxy=in src=… dst=… tls=true :method=GET :authority=web:8080 :path=/
//   rsp id=… … :status=200 latency=812µs
//   end id=… … duration=95µs response-length=1234B
// `-o json` prints the events as they come, one object per line. Ctrl-C ends it (exit 0).
import { Command, Option } from 'commander';
import { TAP_SERVICE_PATH, type TapEvent, type TapServiceEvent, type TapServiceRequest } from '../contract/tap.js';
import { JsonStreamClient } from '../shared/api-stream.js';
import type { ApiClientError } from '../shared/api.js';
import { identityName } from '../ca/identity.js';
import { CONTROL_PLANE } from '../contract/sidecar.js';
import { EXIT_BAD_INPUT, EXIT_FAILED, processOut, reportFailure, UsageError, type Out } from './command.js';
import { addTapAccessOptions, tapAccess, type TapAccessFlags } from './tap-access.js';

export interface TapOptions {
  resource: string;
  namespace: string;
  to?: string;
  toNamespace?: string;
  method?: string;
  path?: string;
  authority?: string;
  maxRps?: number;
  output: 'line' | 'wide' | 'json';
  tapUrl: string;
  trustAnchorsPem: string;
  trustDomain: string;
}

const COMMAND = 'mesh tap';
/** How many requests' places (src, dst, …) are kept for their rsp/end lines. */
const MAX_OPEN = 10_000;

type Place = { proxy: string; src: string; dst: string; tls: string; pod: string; clientId?: string; serverId?: string };

function micros(us: number): string {
  return us < 1000 ? `${us}µs` : us < 1_000_000 ? `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)}ms` : `${(us / 1e6).toFixed(2)}s`;
}

/** One event as a line (undefined for what prints nothing: an end whose req was never seen is still shown). */
export class TapPrinter {
  readonly #places = new Map<string, Place>();
  constructor(private readonly wide: boolean) {}

  line(e: TapServiceEvent): string | undefined {
    switch (e.kind) {
      case 'watching':
      case 'started':
        return undefined;
      case 'proxyError':
        return `# ${e.namespace}/${e.pod}: ${e.message}`;
      case 'dropped':
        return `# dropped ${e.count} events (${'pod' in e ? String((e as { pod: string }).pod) : 'a proxy'} was faster than this tap)`;
      case 'req':
      case 'open': {
        const p: Place = { proxy: e.proxy, src: e.src, dst: e.dst, tls: e.tls, pod: `${e.namespace}/${e.pod}` };
        if (e.clientId !== undefined) p.clientId = e.clientId;
        if (e.serverId !== undefined) p.serverId = e.serverId;
        if (this.#places.size >= MAX_OPEN) this.#places.delete(this.#places.keys().next().value!);
        this.#places.set(e.id, p);
        const head = this.#head(e.kind, e.id, p);
        return e.kind === 'req' ? `${head} :method=${e.method} :authority=${e.authority} :path=${e.path}` : `${head} protocol=${e.protocol}${e.sni ? ` sni=${e.sni}` : ''}`;
      }
      case 'rsp':
        return `${this.#head('rsp', e.id, this.#places.get(e.id))} :status=${e.status} latency=${micros(e.latencyUs)}`;
      case 'end': {
        const p = this.#places.get(e.id);
        this.#places.delete(e.id);
        let s = `${this.#head('end', e.id, p)} duration=${micros(e.durationUs)} response-length=${e.responseBytes}B`;
        if (e.grpcStatus !== undefined) s += ` grpc-status=${e.grpcStatus}`;
        if (e.error !== undefined) s += ` error=${e.error}`;
        return s;
      }
      case 'close': {
        const p = this.#places.get(e.id);
        this.#places.delete(e.id);
        return `${this.#head('close', e.id, p)} duration=${micros(e.durationUs)} bytes-in=${e.bytesIn}B bytes-out=${e.bytesOut}B${e.error ? ` error=${e.error}` : ''}`;
      }
    }
  }

  #head(kind: string, id: string, p: Place | undefined): string {
    if (p === undefined) return `${kind} id=${id}`;
    let s = `${kind} id=${id} proxy=${p.proxy} src=${p.src} dst=${p.dst} tls=${p.tls}`;
    if (this.wide) {
      s += ` pod=${p.pod}`;
      if (p.clientId) s += ` client_id=${p.clientId}`;
      if (p.serverId) s += ` server_id=${p.serverId}`;
    }
    return s;
  }
}

export function tapRequest(o: TapOptions): TapServiceRequest {
  const r: TapServiceRequest = { resource: o.resource, namespace: o.namespace };
  if (o.to !== undefined) r.to = o.to;
  if (o.toNamespace !== undefined) r.toNamespace = o.toNamespace;
  const filter: NonNullable<TapServiceRequest['filter']> = {};
  if (o.method !== undefined) filter.method = o.method.toUpperCase();
  if (o.path !== undefined) filter.pathPrefix = o.path;
  if (o.authority !== undefined) filter.authority = o.authority;
  if (Object.keys(filter).length > 0) r.filter = filter;
  if (o.maxRps !== undefined) r.maxRps = o.maxRps;
  return r;
}

/** Runs until `stop` resolves (Ctrl-C) or the tap service ends the stream. */
export function runTap(o: TapOptions, out: Out, stop: Promise<void>): Promise<number> {
  const url = new URL(o.tapUrl);
  const client = new JsonStreamClient({ url: url.origin, trustAnchorPem: o.trustAnchorsPem, serverName: identityName(CONTROL_PLANE.tapServiceAccount, CONTROL_PLANE.namespace, o.trustDomain) });
  const printer = new TapPrinter(o.output === 'wide');
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      client.close();
      resolve(code);
    };
    client.open(TAP_SERVICE_PATH, tapRequest(o), {
      onMessage(m) {
        const e = m as TapServiceEvent;
        if (e.kind === 'watching') {
          if (e.pods.length === 0) {
            out.stderr(`${COMMAND}: no proxy of ${o.resource} could be watched (see above)\n`);
            return finish(EXIT_FAILED);
          }
          out.stderr(`watching ${e.pods.length} pod${e.pods.length === 1 ? '' : 's'}: ${e.pods.map((p) => `${p.namespace}/${p.pod}`).join(', ')}\n`);
          return;
        }
        if (o.output === 'json') return out.stdout(`${JSON.stringify(e)}\n`);
        const line = printer.line(e);
        if (line !== undefined) out.stdout(`${line}\n`);
      },
      onEnd(error: ApiClientError | undefined) {
        if (error === undefined) return finish(0);
        if (error.serverCode === 'MESH_TAP_NO_PODS' || error.serverCode === 'MESH_TAP_RESOURCE' || error.serverCode === 'MESH_API_MALFORMED') {
          out.stderr(`${COMMAND}: ${error.message.replace(/^.*refused \(\d+ [A-Z_]+\): /, '')} [${error.serverCode}]\n`);
          return finish(error.serverCode === 'MESH_TAP_NO_PODS' ? EXIT_FAILED : EXIT_BAD_INPUT);
        }
        out.stderr(`${COMMAND}: ${error.message} [${error.code}]\n`);
        finish(EXIT_FAILED);
      },
    });
    void stop.then(() => finish(0));
  });
}

interface Flags extends TapAccessFlags {
  namespace: string;
  to?: string;
  toNamespace?: string;
  method?: string;
  path?: string;
  authority?: string;
  maxRps?: string;
  output: string;
}

export function tapCommand(out: Out = processOut): Command {
  return addTapAccessOptions(new Command('tap')
    .description('Watch requests through the proxies of a resource as they happen (deploy/NAME, pod/NAME, ns/NAME, svc/NAME)')
    .argument('<resource>', 'deploy/web, pod/web-1, ns/default, svc/api, or a deployment name')
    .option('-n, --namespace <ns>', 'namespace of the resource', 'default')
    .option('--to <resource>', 'only requests to this resource')
    .option('--to-namespace <ns>', 'namespace of --to (default: --namespace)')
    .option('--method <method>', 'only requests with this method')
    .option('--path <prefix>', 'only requests whose path starts with this')
    .option('--authority <authority>', 'only requests to this :authority / Host')
    .option('--max-rps <n>', 'requests per second shown at most, per proxy (default 100, at most 1000: tap samples)')
    .addOption(new Option('-o, --output <format>', 'line (default), wide (adds pod and identities) or json').choices(['line', 'wide', 'json']).default('line')))
    .exitOverride()
    .action(async (resource: string, f: Flags) => {
      try {
        const access = tapAccess(f);
        let maxRps: number | undefined;
        if (f.maxRps !== undefined) {
          maxRps = Number(f.maxRps);
          if (!(maxRps > 0)) throw new UsageError(`--max-rps: "${f.maxRps}" is not a positive number`);
        }
        const o: TapOptions = {
          resource,
          namespace: f.namespace,
          output: f.output as TapOptions['output'],
          ...access,
          ...(f.to === undefined ? {} : { to: f.to }),
          ...(f.toNamespace === undefined ? {} : { toNamespace: f.toNamespace }),
          ...(f.method === undefined ? {} : { method: f.method }),
          ...(f.path === undefined ? {} : { path: f.path }),
          ...(f.authority === undefined ? {} : { authority: f.authority }),
          ...(maxRps === undefined ? {} : { maxRps }),
        };
        const stop = new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        process.exitCode = await runTap(o, out, stop);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}

export type { TapEvent };
