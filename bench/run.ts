// mesh bench: the mesh path beside a direct path and beside HAProxy, in one run, on one lab.
// Not a test: CI does not run it. It is bounded (every run has a duration and a hard limit,
// the whole bench a watchdog) and sends traffic only into the namespaces it creates.
//
//   node dist/bench/run.js [--quick] [--duration S] [--only direct,mesh,haproxy-mtls,...|all]
//                          [--workload tiny|realistic|both] [--rounds N] [-o json]
import { Command, InvalidArgumentError, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isNoisy, measurePath, otherWorkPercent, type PathResult, type Plan } from './measure.js';
import { wholeNumber } from './args.js';
import { DEFAULT_PATHS, PATH_NAMES, type PathName } from './paths.js';
import { choosePinning, describePinning } from './pin.js';
import { compare, formatReport, type BenchReport } from './report.js';
import { headToHead, type HeadToHead } from './rounds.js';
import { bulkHeadToHead, type BulkHeadToHead } from './bulk-rounds.js';
import { createTopology, toolVersions } from './topology.js';
import { workloadList, type WorkloadName } from './workload.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const TOOLS = ['wrk', 'h2load', 'haproxy', 'nginx', 'curl', 'taskset'];

interface CliOptions {
  duration: number;
  quick: boolean;
  only: PathName[];
  workload: WorkloadName[];
  rate: number;
  rateWarmup: number;
  connections: number;
  idleConnections: number;
  quietWait: number;
  settle: number;
  retries: number;
  rounds: number;
  bulkMib: number;
  output: 'table' | 'json';
}

const positive = (what: string) => (raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};


function pathList(raw: string): PathName[] {
  if (raw.trim() === 'all') return [...PATH_NAMES];
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(PATH_NAMES as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown path "${n}" (known: ${PATH_NAMES.join(', ')})`);
  }
  if (names.length === 0) throw new InvalidArgumentError('no path named');
  // Always in the canonical order, so direct (the baseline) is measured first.
  return PATH_NAMES.filter((n) => names.includes(n));
}

/** Which options were given on the command line (the rest are defaults --quick may change). */
type Given = (name: 'duration' | 'quietWait' | 'retries' | 'settle' | 'rounds' | 'bulkMib' | 'rateWarmup') => boolean;

function planFrom(o: CliOptions, given: Given): Plan {
  return {
    durationS: o.quick && !given('duration') ? 2 : o.duration,
    warmupS: o.quick ? 1 : 2,
    connections: o.connections,
    h2Clients: 10,
    h2Streams: 10,
    rate: o.rate,
    rateConnections: 10,
    rateWarmupS: o.quick && !given('rateWarmup') ? 1 : o.rateWarmup,
    idleConnections: o.idleConnections,
    workloads: o.workload,
    // --quick checks that the bench works; it does not wait for a quiet machine unless told to.
    quietWaitS: o.quick && !given('quietWait') ? 0 : o.quietWait,
    settleS: o.quick && !given('settle') ? 0 : o.settle,
    bulkBytes: (o.quick && !given('bulkMib') ? Math.min(64, o.bulkMib) : o.bulkMib) * 1048576,
  };
}

function git(): BenchReport['git'] {
  try {
    const run = (...args: string[]): string =>
      execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = run('rev-parse', 'HEAD');
    const dirty = run('status', '--porcelain') !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

async function bench(o: CliOptions, given: Given): Promise<number> {
  const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  if (process.getuid?.() !== 0) {
    progress('needs root (it creates network namespaces and iptables rules)');
    return 1;
  }
  const absent = TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (absent.length > 0) {
    progress(`missing ${absent.join(', ')}: run \`bash bench/setup.sh\` (as root) first`);
    return 1;
  }

  const plan = planFrom(o, given);
  const retries = o.quick && !given('retries') ? 0 : o.retries;
  // Each path: warm-up, two saturation runs per workload and a fixed-rate run of `duration`,
  // drains, idle connections, set-up; generously.
  const runs = 2 * plan.workloads.length + 1;
  const roundsAsked = o.quick && !given('rounds') ? 0 : o.rounds;
  // Head to head: mesh against HAProxy with mTLS, when both are measured.
  const rounds = o.only.includes('mesh') && o.only.includes('haproxy-mtls') ? roundsAsked : 0;
  // The bulk transfer: at 30 MB/s a path is broken, not slow (bench/measure.ts gives up there).
  const bulkS = plan.bulkBytes > 0 ? 70 + (2 * plan.bulkBytes) / 30e6 : 0;
  // Bulk head to head: direct and the mesh (and HAProxy tcp+mTLS, when measured) in turns, as many rounds.
  const bulkRounds = roundsAsked;
  const bulkPaths: PathName[] = plan.bulkBytes > 0 && bulkRounds > 0 && o.only.includes('direct') && o.only.includes('mesh')
    ? ['direct', 'mesh', ...(o.only.includes('haproxy-tcp-mtls') ? (['haproxy-tcp-mtls'] as PathName[]) : [])]
    : [];
  const limitS =
    60 +
    o.only.length * (1 + retries) * (plan.quietWaitS + plan.warmupS + plan.rateWarmupS + runs * plan.durationS + 30 * runs + bulkS) +
    rounds * 2 * (plan.warmupS + 2 * plan.durationS + 60) +
    bulkRounds * bulkPaths.length * (2 * bulkS);
  const watchdog = setTimeout(() => {
    progress(`still running after ${limitS}s: giving up (the lab is removed on exit)`);
    process.exit(3);
  }, limitS * 1000);
  watchdog.unref();

  const pin = choosePinning();
  const startedAt = new Date();
  progress(describePinning(pin));
  const t = await createTopology(pin, plan.bulkBytes);
  const paths: PathResult[] = [];
  let h2h: HeadToHead | undefined;
  let bulkH2h: BulkHeadToHead | undefined;
  try {
    progress(`lab ${t.lab.prefix}: client ${t.client.ipv4}, server ${t.server.ipv4} (nginx, 1 worker)`);
    for (const name of o.only) {
      let result = await measurePath(t, name, plan, progress);
      // Other sessions share this machine; a path measured while they ran gets another go,
      // and the quieter of the two is kept (its noise is reported either way).
      for (let retry = 0; retry < retries && isNoisy(result) && result.problems.length === 0; retry++) {
        progress(`${name}: other work used ${otherWorkPercent(result).toFixed(0)} % of the machine meanwhile; measuring again`);
        const again = await measurePath(t, name, plan, progress);
        if (again.problems.length === 0 && otherWorkPercent(again) < otherWorkPercent(result)) result = again;
      }
      paths.push(result);
    }
    if (rounds > 0) {
      try {
        h2h = await headToHead(t, 'mesh', 'haproxy-mtls', rounds, plan.durationS, plan.warmupS, progress);
      } catch (err) {
        progress(`head to head: ${(err as Error).message}`);
      }
    }
    if (bulkPaths.length > 0) {
      try {
        bulkH2h = await bulkHeadToHead(t, bulkPaths, bulkRounds, progress);
      } catch (err) {
        progress(`bulk head to head: ${(err as Error).message}`);
      }
    }
  } finally {
    await t.destroy();
  }
  clearTimeout(watchdog);

  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    argv: process.argv.slice(2),
    pinning: describePinning(pin),
    tools: toolVersions(),
    git: git(),
    plan,
    paths,
    ...compare(paths),
    ...(h2h ? { headToHead: h2h } : {}),
    ...(bulkH2h ? { bulkHeadToHead: bulkH2h } : {}),
  };
  const dir = join(repo, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${report.startedAt.replace(/[:.]/g, '-')}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(file, json);
  if (o.output === 'json') process.stdout.write(json);
  else process.stdout.write(`${formatReport(report)}\nresults: ${file}\n${json}`);
  // A head to head that was due and did not finish fails the run too (its reason is in the progress lines).
  return paths.some((p) => p.problems.length > 0) || (rounds > 0 && h2h === undefined) || (bulkPaths.length > 0 && bulkH2h === undefined) ? 1 : 0;
}

const program = new Command('bench')
  .description('Measure the mesh path beside a direct path and HAProxy: throughput, latency percentiles, proxy RSS')
  .option('--duration <seconds>', 'length of each saturation and fixed-rate run', positive('--duration'), 10)
  .option('--quick', 'short runs (2 s), no waiting for a quiet machine, no retries: to check that the bench works', false)
  .addOption(
    new Option('--only <paths>', `comma-separated subset of ${PATH_NAMES.join(',')}, or all`)
      .argParser(pathList)
      .default([...DEFAULT_PATHS], DEFAULT_PATHS.join(',')),
  )
  .addOption(
    new Option('--workload <name>', 'what the saturation runs request: tiny (GET /, 15-byte body), realistic (~1 KB of headers, 2 KB body) or both')
      .argParser((raw) => {
        try {
          return workloadList(raw);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      })
      .default(workloadList('both'), 'both'),
  )
  .option('--rate <req/s>', 'request rate of the fixed-rate run', positive('--rate'), 1000)
  .option('--rate-warmup <seconds>', 'fixed-rate run: seconds at the rate before the measured ones, reported apart (what follows the saturating runs)', wholeNumber('--rate-warmup', 1, 120), 10)
  .option('--connections <n>', 'wrk connections at saturation', wholeNumber('--connections', 1), 50)
  .option('--idle-connections <n>', 'idle keep-alive connections held for the RSS reading', wholeNumber('--idle-connections', 1), 1000)
  .option('--quiet-wait <seconds>', 'before each path, wait this long at most for other work on the machine to stop', (raw) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('--quiet-wait must be a number of seconds, 0 or more');
    return n;
  }, 60)
  .option('--settle <seconds>', 'after the loads, leave the proxies quiet this long and read RSS again (0: no settled reading)', (raw) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 300) throw new InvalidArgumentError('--settle must be 0..300 seconds');
    return n;
  }, 30)
  .option('--retries <n>', 'measure a path again (at most this often) when other work on the machine disturbed it', wholeNumber('--retries', 0), 1)
  .option('--rounds <n>', 'head to head: mesh and haproxy-mtls measured in turns this many times (tiny requests), and the opaque bulk transfer of direct, mesh and haproxy-tcp-mtls likewise; median ratios; 0: none', wholeNumber('--rounds', 0, 20), 3)
  .option('--bulk-mib <n>', 'opaque bulk transfer: MiB each way at once, with half-close, through paths that carry opaque TCP; 0: none', wholeNumber('--bulk-mib', 0, 16384), 1024)
  .addOption(new Option('-o, --output <format>', 'table (and the JSON after it) or only the JSON').choices(['table', 'json']).default('table'))
  .action(async (opts: CliOptions) => {
    process.exitCode = await bench(opts, (name) => program.getOptionValueSource(name) === 'cli');
  });

await program.parseAsync();
