// mesh-init: plan (read the kernel's state, compute one restore script per IP
// family and the policy-routing steps), then apply it as one transaction:
// if any step fails, every family and route is put back as it was.
import { existsSync, readFileSync } from 'node:fs';
import { InitError } from './errors.js';
import {
  applyScript,
  chooseBackend,
  iptablesFor,
  readRuleset,
  runCommand,
  type Backend,
  type Iptables,
  type Runner,
} from './iptables.js';
import type { Family, InitOptions } from './options.js';
import { managedSnapshot, managedTables, parseSave, restoreScript } from './reconcile.js';
import { describeStep, planRoutes, runRouteSteps, undoRouteSteps, type RouteStep } from './routing.js';
import { desiredRules, noRules } from './rules.js';

export { InitError } from './errors.js';
export * from './options.js';
export { desiredRules } from './rules.js';
export { restoreScript, parseSave, managedSnapshot } from './reconcile.js';

export type InitAction = 'apply' | 'cleanup';

export interface FamilyPlan {
  family: Family;
  iptables: Iptables;
  /** iptables-save output before any change: the rollback point. */
  before: string;
  /** Empty when the kernel already has exactly what we want. */
  script: string;
  routes: RouteStep[];
}

export interface InitPlan {
  action: InitAction;
  backend: Backend;
  families: FamilyPlan[];
}

export interface InitDeps {
  run: Runner;
  /** Whether this process may change the network namespace. */
  hasNetAdmin: () => boolean;
  ipv6Available: () => boolean;
  log: (line: string) => void;
}

const CAP_NET_ADMIN = 12;

export function processHasNetAdmin(): boolean {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
}

export const defaultDeps: InitDeps = {
  run: runCommand,
  hasNetAdmin: processHasNetAdmin,
  ipv6Available: () => existsSync('/proc/net/if_inet6'),
  log: (line) => process.stderr.write(`${line}\n`),
};

function families(o: InitOptions, deps: InitDeps): Family[] {
  const out: Family[] = [];
  if (o.ipv4) out.push(4);
  if (o.ipv6) {
    if (deps.ipv6Available()) out.push(6);
    else deps.log('mesh-init: IPv6 is disabled in this network namespace; configuring IPv4 only');
  }
  return out;
}

export async function planInit(o: InitOptions, action: InitAction, deps: InitDeps = defaultDeps): Promise<InitPlan> {
  if (!deps.hasNetAdmin()) {
    throw new InitError('MESH_INIT_NO_CAP_NET_ADMIN', 'mesh-init needs CAP_NET_ADMIN (run as root or grant NET_ADMIN and NET_RAW)');
  }
  const backend = await chooseBackend(o.iptablesMode, deps.run);
  const plans: FamilyPlan[] = [];
  for (const family of families(o, deps)) {
    const iptables = iptablesFor(backend, family);
    const before = await readRuleset(iptables, deps.run);
    const want = action === 'apply' ? desiredRules(o, family) : noRules(family);
    const script = restoreScript(want, parseSave(before));
    const wantRoutes = action === 'apply' && o.mode === 'tproxy';
    const routes = await planRoutes({ family, mark: o.tproxyMark, table: o.routeTable }, wantRoutes, deps.run);
    plans.push({ family, iptables, before, script, routes });
  }
  return { action, backend, families: plans };
}

/** What a rollback restores: the managed tables as they were; tables that did not exist are emptied. */
export function rollbackScript(plan: FamilyPlan): string {
  const snapshot = managedSnapshot(plan.before);
  const present = new Set(parseSaveTables(snapshot));
  const touched = managedTables.filter((t) => plan.script.includes(`*${t}\n`) && !present.has(t));
  return snapshot + touched.map((t) => `*${t}\nCOMMIT\n`).join('');
}

function parseSaveTables(text: string): string[] {
  return Object.keys(parseSave(text));
}

export async function applyPlan(plan: InitPlan, deps: InitDeps = defaultDeps): Promise<void> {
  const applied: FamilyPlan[] = [];
  const routed: RouteStep[] = [];
  try {
    for (const f of plan.families) {
      if (f.script !== '') {
        // Counted as applied before the call: a multi-table script may have
        // committed its first table before the second was rejected.
        applied.push(f);
        await applyScript(f.iptables, f.script, true, deps.run);
      }
      routed.push(...(await runRouteSteps(f.routes, deps.run)));
    }
  } catch (err) {
    await rollback(applied, routed, deps, err as Error);
    const e = err as Error;
    if (e instanceof InitError) throw new InitError(e.code, `${e.message}; nothing was changed`);
    throw e;
  }
}

async function rollback(applied: FamilyPlan[], routed: RouteStep[], deps: InitDeps, cause: Error): Promise<void> {
  try {
    await undoRouteSteps(routed, deps.run);
    for (const f of applied.reverse()) await applyScript(f.iptables, rollbackScript(f), false, deps.run);
  } catch (err) {
    throw new InitError(
      'MESH_INIT_ROLLBACK_FAILED',
      `${cause.message}; rolling back also failed, the ruleset may be partly applied: ${(err as Error).message}`,
    );
  }
}

/** The plan as a person reads it: per family, the restore script and the ip commands. */
export function describePlan(plan: InitPlan): string {
  const out: string[] = [];
  for (const f of plan.families) {
    out.push(`# IPv${f.family}: ${f.iptables.restore} --noflush`);
    out.push(f.script === '' ? '# (iptables already as wanted)' : f.script.trimEnd());
    for (const s of f.routes) out.push(describeStep(s));
  }
  return `${out.join('\n')}\n`;
}

export async function runInit(o: InitOptions, action: InitAction, dryRun: boolean, deps: InitDeps = defaultDeps): Promise<InitPlan> {
  const plan = await planInit(o, action, deps);
  if (dryRun) return plan;
  await applyPlan(plan, deps);
  const changed = plan.families.filter((f) => f.script !== '' || f.routes.length > 0).map((f) => `IPv${f.family}`);
  deps.log(
    `mesh-init: ${action === 'apply' ? `${o.mode} interception` : 'cleanup'} ${
      changed.length === 0 ? 'already in place, nothing to do' : `done for ${changed.join(' and ')}`
    } (iptables-${plan.backend})`,
  );
  return plan;
}
