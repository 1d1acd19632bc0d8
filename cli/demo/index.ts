// `mesh demo`: the README's main job. One command, no configuration: builds a
// small meshed app on this host (cli/demo/world.ts), checks traffic flows,
// shows `mesh stat` and a few seconds of `mesh tap`, then removes everything.
//   mesh demo            run, show, clean up
//   mesh demo --keep     leave it running (traffic flowing, dashboard live) and return
//   mesh demo --down     remove what --keep left: processes, namespaces, the host's link, files
// --keep hands the world to a detached supervisor process (`--supervise`), which
// owns it until --down signals it; its state file says where it is.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { TapServiceEvent } from '../../contract/tap.js';
import { eventually } from '../../lab/index.js';
import { postgresBinDir } from '../../lab/services.js';
import { formatTable } from '../output.js';
import { parseMetrics } from '../prom-text.js';
import { computeStat, liveDeps, type StatOptions } from '../stat-command.js';
import { statCells, statHeaders, type StatRow } from '../stat.js';
import { runTap, type TapOptions } from '../tap.js';
import { buildWorld, NAMESPACE, trafficTotals, VIPS, type TrafficTotals, type World } from './world.js';

const stateDir = (): string => process.env.MESH_DEMO_STATE_DIR ?? (existsSync('/run') ? '/run/mesh-demo' : join(tmpdir(), 'mesh-demo'));
const stateFile = (): string => join(stateDir(), 'state.json');
const logFile = (): string => join(stateDir(), 'demo.log');

interface DemoState {
  pid: number;
  prefix: string;
  host: string;
  tapUrl: string;
  anchors: string;
  trustDomain: string;
  ready: boolean;
}

interface Flags {
  keep: boolean;
  down: boolean;
  supervise: boolean;
  output: 'table' | 'json';
  tapSeconds: string;
}

/** One edge as the source's proxy counts it: connections it opened to a destination, and how they were secured. */
export interface Edge {
  from: string;
  to: string;
  tls: string;
  serverId: string;
  connections: number;
}

export interface DemoReport {
  traffic: TrafficTotals;
  stat: StatRow[];
  tap: TapServiceEvent[];
  edges: Edge[];
}

const say = (line: string): void => void process.stderr.write(`${line}\n`);

/** What the proxies of every pod count per outbound destination (tcp_open_total). */
async function edgesOf(tapUrl: string, anchors: string, trustDomain: string): Promise<Edge[]> {
  const deps = liveDeps({ tapUrl, trustAnchorsPem: readFileSync(anchors, 'utf8'), trustDomain });
  const pods = await deps.pods(`ns/${NAMESPACE}`, NAMESPACE);
  // A connection is counted where the app sent it: a pod's address, or a service's virtual address
  // (discovery then chose the endpoints, and labels the connection with the identity they share).
  const byHost = new Map<string, string>([...pods.map((p) => [p.address, p.deployment] as [string, string]), ...Object.entries(VIPS).map(([name, vip]) => [vip, name] as [string, string])]);
  const edges: Edge[] = [];
  for (const p of pods.filter((x) => x.identity !== undefined)) {
    for (const s of parseMetrics(await deps.scrape(p.address))) {
      if (s.name !== 'tcp_open_total' || s.labels.direction !== 'outbound' || s.value === 0) continue;
      const addr = s.labels.target_addr ?? '';
      const host = addr.startsWith('[') ? addr.slice(1, addr.indexOf(']')) : addr.slice(0, addr.lastIndexOf(':'));
      edges.push({ from: p.deployment, to: `${byHost.get(host) ?? host}${addr.slice(addr.lastIndexOf(':'))}`, tls: s.labels.tls ?? '', serverId: s.labels.server_id ?? '-', connections: s.value });
    }
  }
  return edges.sort((a, b) => `${a.from} ${a.to}`.localeCompare(`${b.from} ${b.to}`));
}

/** `mesh stat` and a few seconds of `mesh tap`, as the user would run them. */
async function show(o: { tapUrl: string; anchors: string; trustDomain: string; tapSeconds: number; json: boolean; traffic: () => TrafficTotals | undefined }): Promise<DemoReport> {
  const common = { tapUrl: o.tapUrl, trustAnchorsPem: readFileSync(o.anchors, 'utf8'), trustDomain: o.trustDomain };
  const statOptions: StatOptions = { resource: 'deploy', namespace: NAMESPACE, windowMs: 5000, output: 'table', ...common };
  say(`\n$ mesh stat deploy   (5 s of live readings)`);
  const stat = (await computeStat(statOptions, liveDeps(common), say)).sort((a, b) => a.name.localeCompare(b.name));
  if (!o.json) process.stdout.write(formatTable(statHeaders, stat.map(statCells)));

  say(`\n$ mesh tap deploy/api   (${o.tapSeconds} s)`);
  const tap: TapServiceEvent[] = [];
  let shown = 0;
  const tapOptions: TapOptions = { resource: 'deploy/api', namespace: NAMESPACE, output: 'json', maxRps: 20, ...common };
  const code = await runTap(
    tapOptions,
    {
      stdout: (text) => {
        for (const line of text.split('\n').filter(Boolean)) tap.push(JSON.parse(line) as TapServiceEvent);
      },
      stderr: say,
    },
    new Promise((r) => setTimeout(r, o.tapSeconds * 1000)),
  );
  if (code !== 0) throw new Error('mesh tap failed (above)');
  if (!o.json) {
    const { TapPrinter } = await import('../tap.js');
    const printer = new TapPrinter(false);
    for (const e of tap) {
      const line = printer.line(e);
      if (line !== undefined && shown++ < 18) process.stdout.write(`${line}\n`);
    }
    if (shown > 18) process.stdout.write(`… ${shown - 18} more lines\n`);
  }
  const edges = await edgesOf(o.tapUrl, o.anchors, o.trustDomain);
  if (!o.json) {
    say('\nconnections each proxy opened, and how they were secured:');
    process.stdout.write(formatTable(['FROM', 'TO', 'TLS', 'SERVER_ID', 'CONNECTIONS'], edges.map((e) => [e.from, e.to, e.tls, e.serverId, String(e.connections)])));
  }
  return { traffic: o.traffic() ?? { ok: 0, failed: 0, statuses: {}, inventory: {}, db: 0 }, stat, tap, edges };
}

/** Traffic is flowing: 30 answers from the app, none lost by the mesh. */
async function healthy(w: World): Promise<TrafficTotals> {
  await eventually(() => {
    const t = trafficTotals(w.traffic);
    if (t === undefined || t.ok < 30) throw new Error(`traffic so far: ${JSON.stringify(t ?? {})}`);
  }, { timeoutMs: 30_000, what: '30 answered requests' });
  const t = trafficTotals(w.traffic)!;
  if (t.failed > 0) throw new Error(`requests failed while the demo started: ${JSON.stringify(t)}`);
  return t;
}

/** A missing prerequisite, named with how to get it. */
function prerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root: it creates network namespaces and iptables rules (sudo mesh demo)';
  try {
    postgresBinDir();
  } catch {
    return 'needs PostgreSQL for its database pod: apt-get install postgresql (or run scripts/setup.sh)';
  }
  for (const [bin, pkg] of [['/usr/sbin/ip', 'iproute2'], ['/usr/bin/curl', 'curl']] as const) {
    if (!existsSync(bin)) return `needs ${bin}: apt-get install ${pkg}`;
  }
  return undefined;
}

async function runOnce(f: Flags): Promise<number> {
  const world = await buildWorld(say);
  try {
    await healthy(world);
    const report = await show({ tapUrl: world.tapUrl, anchors: world.anchors, trustDomain: world.identity.trustDomain, tapSeconds: Number(f.tapSeconds), json: f.output === 'json', traffic: () => trafficTotals(world.traffic) });
    if (f.output === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    say('\nto keep it running with the dashboard: mesh demo --keep');
    return report.traffic.failed === 0 ? 0 : 1;
  } finally {
    await world.destroy();
    say('demo removed: pods, namespaces, rules, processes and files');
  }
}

async function supervise(): Promise<number> {
  // The lab's own signal handlers exit at once; this process tears down properly first.
  const world = await buildWorld(say);
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  const stop = new Promise<void>((r) => {
    process.once('SIGTERM', () => r());
    process.once('SIGINT', () => r());
  });
  try {
    await healthy(world);
    const state: DemoState = { pid: process.pid, prefix: world.lab.prefix, host: world.host, tapUrl: world.tapUrl, anchors: world.anchors, trustDomain: world.identity.trustDomain, ready: true };
    writeFileSync(stateFile(), JSON.stringify(state));
    say('ready');
  } catch (e) {
    say(`failed: ${(e as Error).message}`);
    await world.destroy();
    return 1;
  }
  await stop;
  await world.destroy();
  rmSync(stateFile(), { force: true });
  say('stopped');
  return 0;
}

function readState(): DemoState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(), 'utf8')) as DemoState;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function keep(f: Flags): Promise<number> {
  const existing = readState();
  if (existing !== undefined && alive(existing.pid)) {
    say(`a demo is already running (pid ${existing.pid}); mesh demo --down removes it`);
    return 1;
  }
  mkdirSync(stateDir(), { recursive: true });
  rmSync(stateFile(), { force: true });
  const log = openSync(logFile(), 'w');
  const child = spawn(process.execPath, [process.argv[1]!, 'demo', '--supervise'], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  let printed = 0;
  const relay = (): void => {
    const lines = readFileSync(logFile(), 'utf8').split('\n').filter(Boolean);
    for (; printed < lines.length; printed++) if (lines[printed] !== 'ready') say(lines[printed]!);
  };
  try {
    await eventually(() => {
      relay();
      if (!alive(child.pid!)) throw Object.assign(new Error('the demo supervisor stopped'), { fatal: true });
      if (readState()?.ready !== true) throw new Error('not ready yet');
    }, { timeoutMs: 120_000, what: 'the demo running' });
  } catch (e) {
    relay();
    say(`mesh demo --keep: ${(e as Error).message} (log: ${logFile()})`);
    if (alive(child.pid!)) process.kill(child.pid!, 'SIGTERM');
    return 1;
  }
  const s = readState()!;
  const report = await show({ tapUrl: s.tapUrl, anchors: s.anchors, trustDomain: s.trustDomain, tapSeconds: Number(f.tapSeconds), json: f.output === 'json', traffic: () => undefined });
  if (f.output === 'json') process.stdout.write(`${JSON.stringify({ ...report, state: s }, null, 2)}\n`);
  const flags = `--tap-url ${s.tapUrl} --trust-anchors ${s.anchors}`;
  say([
    '',
    `the demo keeps running (supervisor pid ${s.pid}, log ${logFile()}), traffic flowing. From this shell:`,
    `  mesh dashboard ${flags}        then open http://127.0.0.1:50750`,
    `  mesh stat deploy ${flags}`,
    `  mesh tap deploy/web ${flags}`,
    `  curl http://198.18.0.200:8080/shop/1    (through no proxy: this host is not meshed)`,
    '  mesh demo --down                         removes everything',
  ].join('\n'));
  return 0;
}

async function down(): Promise<number> {
  const s = readState();
  if (s === undefined) {
    say('no demo is running (nothing to remove)');
    return 0;
  }
  if (alive(s.pid)) {
    process.kill(s.pid, 'SIGTERM');
    try {
      await eventually(() => {
        if (alive(s.pid)) throw new Error(`pid ${s.pid} still running`);
      }, { timeoutMs: 30_000, what: 'the demo supervisor to stop' });
    } catch {
      // SIGKILL skips its teardown, but its pod processes die with it (pdeathsig) and its
      // namespaces, owned by a dead pid, are reaped by the next lab that starts.
      process.kill(s.pid, 'SIGKILL');
    }
  }
  rmSync(stateDir(), { recursive: true, force: true });
  say(`demo removed (pid ${s.pid}, namespaces ${s.prefix}-*)`);
  return 0;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('Run a small meshed app on this host (network-namespace pods, a control plane, traffic), show mesh stat and mesh tap')
    .option('--keep', 'leave it running with traffic flowing (mesh demo --down removes it)', false)
    .option('--down', 'remove a demo left by --keep', false)
    .addOption(new Option('--supervise', 'internal: own a --keep demo until signalled').hideHelp().default(false))
    .option('--tap-seconds <n>', 'how long to show mesh tap', '3')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (f: Flags) => {
      try {
        if (f.down) {
          process.exitCode = await down();
          return;
        }
        const missing = prerequisites();
        if (missing !== undefined) {
          say(`mesh demo: ${missing}`);
          process.exitCode = 1;
          return;
        }
        if (!(Number(f.tapSeconds) > 0 && Number(f.tapSeconds) <= 60)) {
          say(`mesh demo: --tap-seconds: "${f.tapSeconds}" is not a number of seconds from 1 to 60`);
          process.exitCode = 2;
          return;
        }
        process.exitCode = f.supervise ? await supervise() : f.keep ? await keep(f) : await runOnce(f);
      } catch (e) {
        say(`mesh demo: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

