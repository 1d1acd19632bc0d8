// `mesh stat RESOURCE`: success rate, request rate, latency percentiles and
// open connections per workload, kubectl-style:
//   NAME   MESHED   SUCCESS   RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN
// The tap service says which pods a resource has (meshed or not); the numbers
// come from a Prometheus server (--prometheus-url, PromQL over -t) or, without
// one, from each proxy's /metrics read at the start and end of the window.
import { Command, Option } from 'commander';
import { PROXY_PORTS } from '../contract/sidecar.js';
import { TAP_PODS_PATH, type PodEntry } from '../contract/tap.js';
import { identityName } from '../ca/identity.js';
import { CONTROL_PLANE } from '../contract/sidecar.js';
import { postJson } from '../shared/api.js';
import { EXIT_FAILED, processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseDuration } from './flags.js';
import { addTapAccessOptions, tapAccess, type TapAccessFlags } from './tap-access.js';
import { formatTable } from './output.js';
import { INBOUND, promMatchers, promQueries, rowOf, statCells, statHeaders, sumTotals, totalsOf, windowOf, type Selector, type StatRow, type Totals } from './stat.js';

export interface StatOptions {
  resource: string;
  namespace: string;
  from?: string;
  to?: string;
  windowMs: number;
  output: 'table' | 'json';
  prometheusUrl?: string;
  tapUrl: string;
  trustAnchorsPem: string;
  trustDomain: string;
}

const COMMAND = 'mesh stat';

export interface StatDeps {
  /** The pods of a resource (the tap service). */
  pods(resource: string, namespace: string): Promise<PodEntry[]>;
  /** One proxy's /metrics text. */
  scrape(address: string): Promise<string>;
  /** One PromQL instant query's scalar (0 when empty). */
  query(promUrl: string, q: string): Promise<number | undefined>;
  sleep(ms: number): Promise<void>;
}

export function liveDeps(o: { tapUrl: string; trustAnchorsPem: string; trustDomain: string }): StatDeps {
  return {
    async pods(resource, namespace) {
      const r = (await postJson({
        url: new URL(o.tapUrl).origin,
        path: TAP_PODS_PATH,
        body: { resource, namespace },
        trustAnchorPem: o.trustAnchorsPem,
        serverName: identityName(CONTROL_PLANE.tapServiceAccount, CONTROL_PLANE.namespace, o.trustDomain),
      })) as { pods: PodEntry[] };
      return r.pods;
    },
    async scrape(address) {
      const host = address.includes(':') ? `[${address}]` : address;
      const res = await fetch(`http://${host}:${PROXY_PORTS.admin}/metrics`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`${address}: /metrics answered ${res.status}`);
      return res.text();
    },
    async query(promUrl, q) {
      const res = await fetch(`${promUrl.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as { status: string; error?: string; data?: { result: Array<{ value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`Prometheus refused the query (${body.error ?? res.status}): ${q}`);
      const v = body.data?.result[0]?.value[1];
      if (v === undefined) return undefined;
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

/** Rows: a deployment per row, a pod per row for pod/…, one row for a service. */
function groupsOf(resource: string, pods: PodEntry[]): Map<string, PodEntry[]> {
  const groups = new Map<string, PodEntry[]>();
  const kind = resource.split('/')[0]!.toLowerCase();
  const bySvc = ['svc', 'service', 'services'].includes(kind) && resource.includes('/');
  for (const p of pods) {
    const key = bySvc ? resource.slice(resource.indexOf('/') + 1) : ['po', 'pod', 'pods'].includes(kind) ? p.pod : p.deployment;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(p);
  }
  return groups;
}

const seconds = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.max(1, Math.round(ms / 1000))}s`);

export async function computeStat(o: StatOptions, deps: StatDeps, progress: (line: string) => void): Promise<StatRow[]> {
  const pods = await deps.pods(o.resource, o.namespace);
  if (pods.length === 0) throw Object.assign(new Error(`${o.resource} in ${o.namespace} has no pods`), { code: 'MESH_STAT_NO_PODS' });
  let sel: Selector = INBOUND;
  if (o.to !== undefined) {
    const to = await deps.pods(o.to, o.namespace);
    if (to.length === 0) throw Object.assign(new Error(`--to ${o.to} has no pods`), { code: 'MESH_STAT_NO_PODS' });
    sel = { direction: 'outbound', toHosts: new Set(to.map((p) => p.address)) };
  } else if (o.from !== undefined) {
    const from = (await deps.pods(o.from, o.namespace)).filter((p) => p.identity !== undefined);
    if (from.length === 0) throw Object.assign(new Error(`--from ${o.from} has no meshed pods (only a meshed client's identity tells its requests apart)`), { code: 'MESH_STAT_NO_PODS' });
    sel = { direction: 'inbound', fromIdentities: new Set(from.map((p) => p.identity!)) };
  }
  const groups = groupsOf(o.resource, pods);
  const meshedOf = (g: PodEntry[]): string => `${g.filter((p) => p.identity !== undefined).length}/${g.length}`;
  const windowS = o.windowMs / 1000;

  if (o.prometheusUrl !== undefined) {
    const rows: StatRow[] = [];
    for (const [name, g] of groups) {
      const meshed = g.filter((p) => p.identity !== undefined);
      if (meshed.length === 0) {
        rows.push(rowOf(name, meshedOf(g), { responses: 0, success: 0, buckets: new Map(), tcpOpen: 0 }, undefined));
        continue;
      }
      const q = promQueries(promMatchers(o.namespace, meshed.map((p) => p.pod), sel), seconds(o.windowMs));
      const [now, before, okNow, okBefore, p50, p95, p99, tcp] = await Promise.all(
        [q.responses, q.responsesBefore, q.success, q.successBefore, q.p50, q.p95, q.p99, q.tcp].map((x) => deps.query(o.prometheusUrl!, x)),
      );
      const n = Math.max(0, (now ?? 0) - (before ?? 0));
      const ok = Math.max(0, (okNow ?? 0) - (okBefore ?? 0));
      rows.push({
        name,
        meshed: meshedOf(g),
        requests: n,
        success: n === 0 ? undefined : ok / n,
        rps: n / windowS,
        p50,
        p95,
        p99,
        tcpConn: tcp ?? 0,
      });
    }
    return rows;
  }

  const meshed = pods.filter((p) => p.identity !== undefined);
  const scrapeAll = async (): Promise<Map<string, Totals>> => {
    const out = new Map<string, Totals>();
    await Promise.all(
      meshed.map(async (p) => {
        try {
          out.set(p.address, totalsOf(await deps.scrape(p.address), sel));
        } catch (e) {
          progress(`${p.namespace}/${p.pod}: ${(e as Error).message} (left out)`);
        }
      }),
    );
    return out;
  };
  const before = await scrapeAll();
  const t0 = performance.now();
  // Said once the window has begun (the first reading is in), so what follows counts.
  progress(`reading ${meshed.length} prox${meshed.length === 1 ? 'y' : 'ies'} over ${seconds(o.windowMs)}…`);
  await deps.sleep(o.windowMs);
  const after = await scrapeAll();
  const elapsed = (performance.now() - t0) / 1000;
  const rows: StatRow[] = [];
  for (const [name, g] of groups) {
    const windows = g.filter((p) => before.has(p.address) && after.has(p.address)).map((p) => windowOf(before.get(p.address)!, after.get(p.address)!));
    rows.push(rowOf(name, meshedOf(g), sumTotals(windows), windows.length === 0 ? undefined : elapsed));
  }
  return rows;
}

export async function runStat(o: StatOptions, deps: StatDeps, out: Out): Promise<number> {
  let rows: StatRow[];
  try {
    rows = await computeStat(o, deps, (line) => out.stderr(`${line}\n`));
  } catch (e) {
    if ((e as { code?: string }).code === 'MESH_STAT_NO_PODS') {
      out.stderr(`${COMMAND}: ${(e as Error).message} [MESH_STAT_NO_PODS]\n`);
      return EXIT_FAILED;
    }
    return reportFailure(COMMAND, e, out);
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  if (o.output === 'json') out.stdout(`${JSON.stringify(rows, null, 2)}\n`);
  else out.stdout(formatTable(statHeaders, rows.map(statCells)));
  return 0;
}

interface Flags extends TapAccessFlags {
  namespace: string;
  from?: string;
  to?: string;
  timeWindow?: string;
  output: string;
  prometheusUrl?: string;
}

export function statCommand(out: Out = processOut): Command {
  return addTapAccessOptions(new Command('stat')
    .description('Success rate, request rate, latency and connections of meshed workloads (deploy, deploy/NAME, pod/NAME, svc/NAME, ns/NAME)')
    .argument('<resource>', 'deploy (all), deploy/web, pod/web-1, svc/api, ns/default')
    .option('-n, --namespace <ns>', 'namespace of the resource', 'default')
    .option('--from <resource>', 'only requests from this resource (its meshed pods\' identities)')
    .option('--to <resource>', 'only requests to this resource (outbound, by its addresses)')
    .option('-t, --time-window <duration>', 'window: 1m with --prometheus-url, else 10s of live reading')
    .addOption(new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table'))
    .option('--prometheus-url <url>', 'read from this Prometheus (its targets labelled namespace and pod) instead of the proxies directly'), 'the tap service, which knows the pods')
    .exitOverride()
    .action(async (resource: string, f: Flags) => {
      try {
        const access = tapAccess(f);
        if (f.from !== undefined && f.to !== undefined) throw new UsageError('--from and --to: give one');
        const windowMs = parseDuration('--time-window', f.timeWindow ?? (f.prometheusUrl === undefined ? '10s' : '1m'));
        if (windowMs < 1000) throw new UsageError('--time-window: at least 1s');
        const o: StatOptions = {
          resource,
          namespace: f.namespace,
          windowMs,
          output: f.output as StatOptions['output'],
          ...access,
          ...(f.from === undefined ? {} : { from: f.from }),
          ...(f.to === undefined ? {} : { to: f.to }),
          ...(f.prometheusUrl === undefined ? {} : { prometheusUrl: f.prometheusUrl }),
        };
        process.exitCode = await runStat(o, liveDeps(o), out);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
