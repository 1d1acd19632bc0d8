// A long-running process inside a pod, watched line by line so tests can wait for what it
// says ("listening") instead of sleeping.

import type { ChildProcess } from 'node:child_process';
import { patienceMs } from './eventually.js';

interface LineWaiter {
  re: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** How long stop() lets a process handle SIGTERM before it is killed. */
const STOP_GRACE_MS = 2_000;

export class PodProcess {
  readonly child: ChildProcess;
  readonly label: string;
  #output = '';
  #lines: string[] = [];
  #partial = { out: '', err: '' };
  #closed = false;
  #waiters = new Set<LineWaiter>();
  readonly #exited: Promise<void>;

  constructor(child: ChildProcess, label: string) {
    this.child = child;
    this.label = label;
    // 'error' also settles it: a process that never started will never emit 'exit'.
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    // Both streams are read as lines: servers print "listening" on stdout, the proxy logs on stderr.
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#onChunk('out', chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#onChunk('err', chunk));
    // 'close', not 'exit': only after it has all stdout arrived, so a final line is never missed.
    child.once('close', () => this.#onClose());
    child.once('error', (err) => this.#onClose(err));
  }

  /** Everything the process wrote to stdout and stderr so far, interleaved as received. */
  output(): string {
    return this.#output;
  }

  /** Every complete line so far, stdout and stderr, in arrival order. */
  lines(): readonly string[] {
    return this.#lines;
  }

  /** Resolves on the first stdout or stderr line matching `re`, including lines already seen. */
  waitForLine(re: RegExp, timeoutMs = patienceMs()): Promise<RegExpMatchArray> {
    for (const line of this.#lines) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    if (this.#closed) return Promise.reject(this.#failure(`exited before printing a line matching ${re}`));
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = {
        re,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(this.#failure(`no line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
  async stop(): Promise<void> {
    if (this.#hasExited()) return;
    this.child.kill('SIGTERM');
    const escalate = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(escalate);
  }

  #hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  #onChunk(stream: 'out' | 'err', chunk: string): void {
    this.#output += chunk;
    const parts = (this.#partial[stream] + chunk).split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.#onLine(line);
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    for (const w of this.#waiters) {
      const m = line.match(w.re);
      if (!m) continue;
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(m);
    }
  }

  #onClose(err?: Error): void {
    if (this.#closed) return;
    for (const stream of ['out', 'err'] as const) {
      if (this.#partial[stream] !== '') this.#onLine(this.#partial[stream]);
      this.#partial[stream] = '';
    }
    this.#closed = true;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(this.#failure(`exited before printing a line matching ${w.re}${err ? ` (${err.message})` : ''}`));
    }
    this.#waiters.clear();
  }

  #failure(why: string): Error {
    const status = this.#hasExited() ? ` [exit code ${this.child.exitCode}, signal ${this.child.signalCode}]` : '';
    return new Error(`${this.label}: ${why}${status}\n--- output ---\n${this.#output}`);
  }
}
