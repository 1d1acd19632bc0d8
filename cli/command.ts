// What every `mesh` subcommand shares: where its output goes (so `run` can be
// called from a test), and how a failure becomes one line and an exit code.
import { CaError } from '../ca/index.js';

export interface Out {
  /** Results: what a pipe or `$(…)` takes. */
  stdout(text: string): void;
  /** Progress and errors, one line each, kubectl-style. */
  stderr(text: string): void;
}

export const processOut: Out = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/**
 * The invocation cannot work as given: a bad flag (MESH_CLI_USAGE, answered with a
 * pointer to --help) or a refusal of what the flags would do (e.g. MESH_CLI_EXISTS).
 */
export class UsageError extends Error {
  constructor(message: string, readonly code: 'MESH_CLI_USAGE' | 'MESH_CLI_EXISTS' = 'MESH_CLI_USAGE') {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit 2: the invocation or its input must change. Exit 1: anything else went wrong. */
export const EXIT_BAD_INPUT = 2;
export const EXIT_FAILED = 1;

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** Prints one line for `err` and returns the exit code for it. */
export function reportFailure(command: string, err: unknown, out: Out): number {
  if (err instanceof UsageError) {
    const tail = err.code === 'MESH_CLI_USAGE' ? `(see ${command} --help)` : `[${err.code}]`;
    out.stderr(`${command}: ${oneLine(err.message)} ${tail}\n`);
    return EXIT_BAD_INPUT;
  }
  // CA refusals (a bad certificate, name or key handed to us) and missing
  // files are the operator's input; their messages already say what to fix.
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof CaError || code === 'MESH_IDENTITY_FILES') {
    out.stderr(`${command}: ${oneLine((err as Error).message)} [${String(code)}]\n`);
    return EXIT_BAD_INPUT;
  }
  const e = err as NodeJS.ErrnoException;
  out.stderr(`${command}: ${oneLine(e?.message ?? String(err))}${typeof code === 'string' ? ` [${code}]` : ''}\n`);
  return EXIT_FAILED;
}
