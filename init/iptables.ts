// Drives the iptables binaries: which backend (nft or legacy), reading the
// current ruleset, and applying a restore script. Failures name the rule.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { InitError } from './errors.js';
import type { Family, IptablesMode } from './options.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type Runner = (cmd: string, args: string[], input?: string) => Promise<CommandResult>;

/** Runs a command, never rejects for a non-zero exit; a missing binary has code 127. */
export const runCommand: Runner = (cmd, args, input) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ code: e.code === 'ENOENT' ? 127 : 126, stdout: '', stderr: e.message }),
    );
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on('error', () => {}); // the command may exit before reading all of its input
    child.stdin.end(input ?? '');
  });

// PATH decides, as for any command; the system directories only stand in when
// there is no PATH at all (some init-container runtimes start with none).
const searchPath = (): string[] =>
  (process.env.PATH ?? '/usr/sbin:/sbin:/usr/bin:/bin').split(':').filter((d) => d !== '');

export function findBinary(name: string): string | undefined {
  for (const dir of searchPath()) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export type Backend = 'nft' | 'legacy';

export interface Iptables {
  backend: Backend;
  family: Family;
  save: string;
  restore: string;
}

function binaries(backend: Backend, family: Family): { save: string; restore: string } {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return { save: `${base}-${backend}-save`, restore: `${base}-${backend}-restore` };
}

export function iptablesFor(backend: Backend, family: Family): Iptables {
  const names = binaries(backend, family);
  const save = findBinary(names.save);
  const restore = findBinary(names.restore);
  if (!save || !restore) {
    const missing = !save ? names.save : names.restore;
    throw new InitError(
      'MESH_INIT_NO_IPTABLES',
      `${missing} not found: install iptables (Debian: apt-get install iptables) or choose --iptables-mode`,
    );
  }
  return { backend, family, save, restore };
}

const countRules = (save: string): number => save.split('\n').filter((l) => l.startsWith('-A ')).length;

/**
 * auto: use the backend that already holds rules here (kube-proxy, CNI and
 * the node agree on one; mixing them is the classic "rules not applied" bug),
 * nft when neither does or legacy is not installed, legacy if nft is missing.
 */
export async function chooseBackend(mode: IptablesMode, run: Runner = runCommand): Promise<Backend> {
  if (mode !== 'auto') return mode;
  const nft = findBinary('iptables-nft-save');
  const legacy = findBinary('iptables-legacy-save');
  if (!nft && !legacy) {
    throw new InitError('MESH_INIT_NO_IPTABLES', 'neither iptables-nft nor iptables-legacy is installed (apt-get install iptables)');
  }
  if (!nft) return 'legacy';
  if (!legacy) return 'nft';
  const [n, l] = await Promise.all([run(nft, []), run(legacy, [])]);
  return countRules(l.stdout) > countRules(n.stdout) ? 'legacy' : 'nft';
}

export async function readRuleset(ipt: Iptables, run: Runner = runCommand): Promise<string> {
  const r = await run(ipt.save, []);
  if (r.code !== 0) {
    throw new InitError('MESH_INIT_COMMAND_FAILED', `${ipt.save} failed: ${firstLine(r.stderr)}`);
  }
  return r.stdout;
}

/**
 * Applies a script. With noflush the tables it names keep their other rules;
 * without, the tables it names are replaced whole (used to roll back).
 */
export async function applyScript(ipt: Iptables, script: string, noflush: boolean, run: Runner = runCommand): Promise<void> {
  const r = await run(ipt.restore, noflush ? ['--noflush', '--wait'] : ['--wait'], script);
  if (r.code === 0) return;
  const blamed = blame(script, r.stderr);
  const where = blamed === undefined ? '' : ` at line ${blamed.line}: ${blamed.rule}`;
  throw new InitError('MESH_INIT_RULE_REJECTED', `${ipt.restore} rejected the ruleset${where} (${firstLine(r.stderr)})`);
}

/**
 * The rule to name in an error. legacy fails at the rule itself; nft checks
 * some things (a jump to a missing chain) only at COMMIT, and then names the
 * culprit in quotes, so the rule that mentions it is the one to blame.
 */
export function blame(script: string, stderr: string): { line: number; rule: string } | undefined {
  const lines = script.split('\n');
  const at = failedLine(stderr);
  const rule = at === undefined ? undefined : lines[at - 1];
  if (at !== undefined && rule !== undefined && rule !== 'COMMIT') return { line: at, rule };
  for (const [, word] of stderr.matchAll(/'([^']+)'/g)) {
    const i = lines.findIndex((l) => l.startsWith('-') && l.split(' ').includes(word!));
    if (i >= 0) return { line: i + 1, rule: lines[i]! };
  }
  return at === undefined || rule === undefined ? undefined : { line: at, rule };
}

/** legacy says "line 5 failed"; nft says "Error occurred at line: 5". */
export function failedLine(stderr: string): number | undefined {
  const m = /line:? (\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

export function firstLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('# Warning'));
  return lines[0] ?? 'no error output';
}
