// Turns "what we want" plus "what the kernel has" into one iptables-restore
// script for `--noflush`. Applying the same options twice yields the same
// ruleset; an empty wish (cleanup) removes every chain and jump we own.
import { chainPrefix, type DesiredRules, type Table } from './rules.js';

export interface SavedRule {
  chain: string;
  spec: string;
}

export interface SavedTable {
  chains: string[];
  rules: SavedRule[];
}

export type SavedRuleset = Partial<Record<string, SavedTable>>;

/** Parses `iptables-save` output (all tables). Counters and comments are ignored. */
export function parseSave(text: string): SavedRuleset {
  const tables: SavedRuleset = {};
  let current: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: [], rules: [] };
      tables[line.slice(1).trim()] = current;
    } else if (current && line.startsWith(':')) {
      current.chains.push(line.slice(1).split(' ')[0]!);
    } else if (current && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      current.rules.push(space < 0 ? { chain: rest, spec: '' } : { chain: rest.slice(0, space), spec: rest.slice(space + 1) });
    }
  }
  return tables;
}

const ours = (chain: string): boolean => chain.startsWith(chainPrefix);

/** The chain a rule jumps or goes to, if any. */
function targetOf(spec: string): string | undefined {
  const m = / -[jg] (\S+)/.exec(` ${spec}`);
  return m?.[1];
}

export const managedTables: readonly Table[] = ['nat', 'mangle'];

/**
 * One restore script, table by table. Order inside a table matters:
 * stale jumps go first (a chain cannot be deleted while referenced), then our
 * chains are declared (which flushes them under --noflush), stale chains are
 * flushed before any is deleted (they may reference each other), and finally
 * rules and missing jumps are appended.
 */
export function restoreScript(want: DesiredRules, have: SavedRuleset): string {
  const out: string[] = [];
  for (const table of managedTables) {
    const wantChains = want.chains.filter((c) => c.table === table);
    const wantJumps = want.jumps.filter((j) => j.table === table);
    const saved = have[table] ?? { chains: [], rules: [] };
    const wanted = new Set(wantChains.map((c) => c.chain));

    const deletes: string[] = [];
    const kept = new Set<string>();
    for (const rule of saved.rules) {
      if (ours(rule.chain)) continue;
      const target = targetOf(rule.spec);
      if (target === undefined || !ours(target)) continue;
      const key = `${rule.chain} ${target}`;
      const isWanted = wantJumps.some((j) => j.from === rule.chain && j.to === target);
      // Keep one jump per (chain, target) in place so re-running never moves it.
      if (isWanted && !kept.has(key)) kept.add(key);
      else deletes.push(`-D ${rule.chain} ${rule.spec}`);
    }
    const stale = saved.chains.filter((c) => ours(c) && !wanted.has(c));
    const adds = wantJumps.filter((j) => !kept.has(`${j.from} ${j.to}`));

    if (deletes.length + stale.length + wantChains.length + adds.length === 0) continue;
    out.push(`*${table}`);
    out.push(...deletes);
    out.push(...wantChains.map((c) => `:${c.chain} - [0:0]`));
    out.push(...stale.map((c) => `-F ${c}`));
    out.push(...stale.map((c) => `-X ${c}`));
    for (const c of wantChains) out.push(...c.rules.map((r) => `-A ${c.chain} ${r}`));
    out.push(...adds.map((j) => `-A ${j.from} ${j.spec}`));
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** The save text of only the managed tables, for rollback and comparison. */
export function managedSnapshot(saveText: string): string {
  const out: string[] = [];
  let keep = false;
  for (const line of saveText.split('\n')) {
    if (line.startsWith('*')) keep = (managedTables as readonly string[]).includes(line.slice(1).trim());
    if (!keep || line.startsWith('#') || line === '') continue;
    out.push(line.startsWith(':') ? line.replace(/\[\d+:\d+\]$/, '[0:0]') : line);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
