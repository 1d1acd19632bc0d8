// Policy routing for TPROXY: packets carrying our mark are looked up in our
// table, whose only route says "every address is local", so the kernel hands
// them to the transparent listener instead of forwarding them.
import { InitError } from './errors.js';
import { firstLine, runCommand, type Runner } from './iptables.js';
import type { Family } from './options.js';

export interface PolicyRoute {
  family: Family;
  mark: number;
  table: number;
}

export interface RouteStep {
  /** What to run to reach the wanted state, and what undoes it. */
  args: string[];
  undo: string[];
}

const fam = (f: Family): string => (f === 4 ? '-4' : '-6');
const anyRoute = (f: Family): string => (f === 4 ? '0.0.0.0/0' : '::/0');

function ruleMatches(line: string, p: PolicyRoute): boolean {
  const mark = /fwmark (0x[0-9a-f]+|\d+)/.exec(line);
  const table = /lookup (\S+)/.exec(line);
  return mark !== null && table !== null && Number(mark[1]) === p.mark && table[1] === String(p.table);
}

async function ip(args: string[], run: Runner): Promise<string> {
  const r = await run('ip', args);
  if (r.code === 127) throw new InitError('MESH_INIT_NO_IPTABLES', 'ip not found: install iproute2');
  if (r.code !== 0) throw new InitError('MESH_INIT_COMMAND_FAILED', `ip ${args.join(' ')} failed: ${firstLine(r.stderr)}`);
  return r.stdout;
}

interface RouteState {
  rules: number;
  hasLocalRoute: boolean;
}

async function current(p: PolicyRoute, run: Runner): Promise<RouteState> {
  const rules = (await ip([fam(p.family), 'rule', 'show'], run)).split('\n').filter((l) => ruleMatches(l, p)).length;
  const routes = await run('ip', [fam(p.family), 'route', 'show', 'table', String(p.table)]);
  // A table that was never used answers with an error: it simply has no routes.
  const hasLocalRoute = routes.code === 0 && /^local (default|0\.0\.0\.0\/0|::\/0) dev lo/m.test(routes.stdout);
  return { rules, hasLocalRoute };
}

/** Steps that reach the wanted state from the current one (empty when already there). */
export async function planRoutes(p: PolicyRoute, want: boolean, run: Runner = runCommand): Promise<RouteStep[]> {
  const have = await current(p, run);
  const rule = [fam(p.family), 'rule', '%', 'fwmark', String(p.mark), 'lookup', String(p.table)];
  const route = [fam(p.family), 'route', '%', 'local', anyRoute(p.family), 'dev', 'lo', 'table', String(p.table)];
  const withVerb = (args: string[], verb: string): string[] => args.map((a) => (a === '%' ? verb : a));
  const steps: RouteStep[] = [];
  if (want) {
    if (have.rules === 0) steps.push({ args: withVerb(rule, 'add'), undo: withVerb(rule, 'del') });
    // Duplicates (from a crashed earlier run) are trimmed to one.
    for (let i = 1; i < have.rules; i++) steps.push({ args: withVerb(rule, 'del'), undo: withVerb(rule, 'add') });
    if (!have.hasLocalRoute) steps.push({ args: withVerb(route, 'add'), undo: withVerb(route, 'del') });
  } else {
    for (let i = 0; i < have.rules; i++) steps.push({ args: withVerb(rule, 'del'), undo: withVerb(rule, 'add') });
    if (have.hasLocalRoute) steps.push({ args: withVerb(route, 'del'), undo: withVerb(route, 'add') });
  }
  return steps;
}

/** Runs steps; on failure undoes the ones already done, then rethrows. */
export async function runRouteSteps(steps: RouteStep[], run: Runner = runCommand): Promise<RouteStep[]> {
  const done: RouteStep[] = [];
  try {
    for (const s of steps) {
      await ip(s.args, run);
      done.push(s);
    }
  } catch (err) {
    await undoRouteSteps(done, run);
    throw err;
  }
  return done;
}

export async function undoRouteSteps(done: RouteStep[], run: Runner = runCommand): Promise<void> {
  for (const s of [...done].reverse()) await run('ip', s.undo);
}

export const describeStep = (s: RouteStep): string => `ip ${s.args.join(' ')}`;
