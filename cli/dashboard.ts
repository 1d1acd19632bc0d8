// `mesh dashboard [--port 50750] [--open]`: the web page of the mesh, served on
// this machine (127.0.0.1 only): workloads with their stat rows, a workload's
// edges, and a live tap. It reads the proxies itself (every 2 s, a rolling
// window) and relays the tap service, with the flags `mesh stat` and `mesh tap` take.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Command } from 'commander';
import { TAP_DEFAULT_MAX_RPS } from '../contract/tap.js';
import { CONTROL_PLANE } from '../contract/sidecar.js';
import { identityName } from '../ca/identity.js';
import { JsonStreamClient } from '../shared/api-stream.js';
import { startDashboard, type Dashboard, type DashboardDeps, type DashboardOptions } from '../dashboard/server.js';
import { EXIT_FAILED, processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseDuration } from './flags.js';
import { addTapAccessOptions, tapAccess, type TapAccessFlags } from './tap-access.js';
import { liveDeps } from './stat-command.js';

const COMMAND = 'mesh dashboard';
/** Linkerd's dashboard port, which operators' port-forward habits expect. */
export const DASHBOARD_PORT = 50750;
const SCRAPE_INTERVAL_MS = 2000;

export interface DashboardCommandOptions extends DashboardOptions {
  open: boolean;
}

/** The first executable `name` on PATH, if any. */
function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Serves until `stop` resolves; 0 then, 1 when it could not start. */
export async function runDashboard(o: DashboardCommandOptions, deps: DashboardDeps, out: Out, stop: Promise<void>): Promise<number> {
  let d: Dashboard;
  try {
    d = await startDashboard(o, deps);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      out.stderr(`${COMMAND}: ${o.host}:${o.port} is in use (another dashboard?): pick one with --port [MESH_DASHBOARD_LISTEN]\n`);
      deps.tap.close();
      return EXIT_FAILED;
    }
    deps.tap.close();
    return reportFailure(COMMAND, e, out);
  }
  out.stdout(`mesh dashboard available at ${d.url}\n`);
  if (o.open) {
    const opener = which('xdg-open');
    if (opener === undefined) out.stderr(`${COMMAND}: --open: xdg-open is not installed here; open ${d.url} yourself\n`);
    else spawn(opener, [d.url], { stdio: 'ignore', detached: true }).on('error', (e) => out.stderr(`${COMMAND}: --open: ${e.message}\n`)).unref();
  }
  await stop;
  await d.close();
  return 0;
}

interface Flags extends TapAccessFlags {
  port: string;
  open?: boolean;
  namespace: string;
  timeWindow: string;
}

export function dashboardCommand(out: Out = processOut): Command {
  return addTapAccessOptions(new Command('dashboard')
    .description('Serve the mesh\'s web dashboard on this machine: workloads, their edges and live requests')
    .option('--port <port>', 'port on 127.0.0.1 (0: any free one)', String(DASHBOARD_PORT))
    .option('--open', 'open it in the default browser (xdg-open)')
    .option('-n, --namespace <ns>', 'namespace shown first (the page can switch)', 'default')
    .option('-t, --time-window <duration>', 'how far back the rates and percentiles look (as mesh stat\'s)', '30s'), 'the tap service, which knows the pods and streams their requests')
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        const { trustAnchorsPem } = tapAccess(f);
        const port = Number(f.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: "${f.port}" is not a port`);
        const windowMs = parseDuration('--time-window', f.timeWindow);
        // Two readings at least: a window shorter than the reading interval has nothing to subtract.
        if (windowMs < 2 * SCRAPE_INTERVAL_MS) throw new UsageError(`--time-window: at least ${(2 * SCRAPE_INTERVAL_MS) / 1000}s (the proxies are read every ${SCRAPE_INTERVAL_MS / 1000}s)`);
        const origin = new URL(f.tapUrl).origin;
        const stat = liveDeps({ tapUrl: f.tapUrl, trustAnchorsPem, trustDomain: f.trustDomain });
        const deps: DashboardDeps = {
          pods: (ns) => stat.pods('deploy', ns),
          scrape: (address) => stat.scrape(address),
          now: () => performance.now(),
          tap: new JsonStreamClient({ url: origin, trustAnchorPem: trustAnchorsPem, serverName: identityName(CONTROL_PLANE.tapServiceAccount, CONTROL_PLANE.namespace, f.trustDomain) }),
        };
        const stop = new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        const o: DashboardCommandOptions = {
          host: '127.0.0.1',
          port,
          open: f.open === true,
          namespace: f.namespace,
          windowMs,
          scrapeIntervalMs: SCRAPE_INTERVAL_MS,
          tapMaxRps: TAP_DEFAULT_MAX_RPS,
        };
        process.exitCode = await runDashboard(o, deps, out, stop);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
}
