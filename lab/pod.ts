// A pod is a network namespace with one interface on the lab's switch. Commands run in it
// through `ip netns exec` and `setpriv`, both of which exec rather than fork, so the pid Node
// sees is the command's own pid and killing it needs no process-group tricks.

import { spawn, type ChildProcess } from 'node:child_process';
import { patienceMs } from './eventually.js';
import { PodProcess } from './pod-process.js';

export interface ExecOptions {
  /** Run as this uid (e.g. 2102, the proxy's); gid defaults to the uid. */
  uid?: number;
  gid?: number;
  /**
   * Capabilities kept across the uid change (ambient), e.g. ['net_admin'] for a
   * proxy that sets IP_TRANSPARENT, as a container granted NET_ADMIN would have.
   */
  caps?: string[];
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Added to the harness's own environment. */
  env?: Record<string, string>;
  /** Killed with SIGKILL after this long; defaults to three times the test patience. */
  timeoutMs?: number;
}

export type SpawnOptions = Omit<ExecOptions, 'input' | 'timeoutMs'>;

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Lets the lab see every child so teardown (even at process exit) can kill them. */
export interface ChildTracker {
  child(child: ChildProcess): void;
  process(proc: PodProcess): void;
}

export class Pod {
  constructor(
    readonly name: string,
    readonly ns: string,
    readonly ipv4: string,
    readonly ipv6: string,
    private readonly tracker: ChildTracker,
  ) {}

  /** Runs to completion; resolves with the exit status whatever it is. */
  exec(cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const child = this.#start(cmd, args, opts, opts.input === undefined ? 'ignore' : 'pipe');
    const timeoutMs = opts.timeoutMs ?? patienceMs() * 3;
    return new Promise((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        // A background grandchild may still hold the pipes open; do not wait on it for 'close'.
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, timeoutMs);
      child.stdout?.on('data', (b: Buffer) => stdout.push(b));
      child.stderr?.on('data', (b: Buffer) => stderr.push(b));
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code,
          signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          timedOut,
        });
      });
      if (child.stdin) {
        // A command that exits without reading its input must not fail the exec with EPIPE.
        child.stdin.on('error', () => {});
        child.stdin.end(opts.input);
      }
    });
  }

  /** Like exec, but a non-zero exit (or a signal, or a timeout) is an error. */
  async execOk(cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(cmd, args, opts);
    if (r.code !== 0) {
      const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
      throw new Error(`${this.#label(cmd, args)} ${how}; stderr:\n${r.stderr}`);
    }
    return r;
  }

  /** Starts a long-running process; the lab stops it on destroy. */
  spawn(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): PodProcess {
    const proc = new PodProcess(this.#start(cmd, args, opts, 'pipe'), this.#label(cmd, args));
    this.tracker.process(proc);
    return proc;
  }

  #start(cmd: string, args: readonly string[], opts: SpawnOptions, stdin: 'pipe' | 'ignore'): ChildProcess {
    // --pdeathsig: if the test runner dies without running any handler (SIGKILL, OOM), the
    // kernel kills pod processes too instead of leaving servers running in orphaned namespaces.
    // setpriv applies it after changing uid, so the credential change does not clear it.
    const priv = ['--pdeathsig', 'KILL'];
    if (opts.uid !== undefined) {
      priv.push(`--reuid=${opts.uid}`, `--regid=${opts.gid ?? opts.uid}`, '--clear-groups');
      if (opts.caps && opts.caps.length > 0) {
        const set = opts.caps.map((c) => `+${c}`).join(',');
        priv.push(`--inh-caps=${set}`, `--ambient-caps=${set}`);
      }
    }
    const child = spawn('ip', ['netns', 'exec', this.ns, 'setpriv', ...priv, '--', cmd, ...args], {
      stdio: [stdin, 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      detached: false,
    });
    this.tracker.child(child);
    return child;
  }

  #label(cmd: string, args: readonly string[]): string {
    const shown = [cmd, ...args].join(' ');
    return `pod ${this.name}: ${shown.length > 120 ? `${shown.slice(0, 117)}...` : shown}`;
  }
}
