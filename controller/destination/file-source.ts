// The file source: a YAML file of services (file-format.ts) for hosts, VMs and
// the local demo, re-read when it changes. fs.watch on the directory sees an
// editor's or a ConfigMap's rename-into-place as well as a write; a cheap stat
// poll catches what fs.watch misses (some filesystems and containers deliver
// no events). A file that does not parse is refused with one line naming file,
// line and problem; the last good state stays, and so does traffic.
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Log } from '../../shared/log.js';
import type { Authority } from './authority.js';
import { resolveIn, type Catalog, type Resolution } from './catalog.js';
import { FileSourceError, parseServicesFile } from './file-format.js';
import { ChangeNotifier, type Source } from './source.js';

export interface FileSourceOptions {
  path: string;
  trustDomain: string;
  log: Log;
  /** How often the file's mtime and size are compared (default 250 ms). */
  pollMs?: number;
  /** Writes come in bursts (truncate, write, write): read once they settle (default 30 ms). */
  debounceMs?: number;
}

async function load(o: FileSourceOptions): Promise<{ catalog: Catalog; text: string }> {
  let text: string;
  try {
    text = await readFile(o.path, 'utf8');
  } catch (e) {
    throw new FileSourceError(o.path, undefined, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return { catalog: parseServicesFile(o.path, text, { trustDomain: o.trustDomain }), text };
}

/** Reads the file once (a broken or missing file refuses to start), then follows it. */
export async function createFileSource(o: FileSourceOptions): Promise<Source> {
  const name = `file:${o.path}`;
  let { catalog, text } = await load(o);
  const statKey = async (): Promise<string> => {
    const s = await stat(o.path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  };
  let lastStat = await statKey().catch(() => 'missing');
  let lastRefused = '';
  const changes = new ChangeNotifier();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  let again = false;

  const reread = async (): Promise<void> => {
    if (reading) return void (again = true);
    reading = true;
    try {
      const next = await load(o);
      lastRefused = '';
      if (next.text !== text && !closed) {
        ({ catalog, text } = next);
        o.log.info('file source updated', { file: o.path, services: catalog.services.size });
        changes.emit();
      }
    } catch (e) {
      const err = e as FileSourceError;
      // One line per broken state, not one per poll while it stays broken.
      if (err.message !== lastRefused) {
        lastRefused = err.message;
        o.log.error('file source refused a change, keeping the last good state', { file: err.file, line: err.line, problem: err.problem, code: err.code });
      }
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reread(), o.debounceMs ?? 30);
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(o.path), (_event, file) => {
      if (file === null || file === basename(o.path) || file.startsWith('..')) schedule();
    });
    // A directory that goes away ends the watch; the poll carries on.
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(() => {
    statKey().then(
      (now) => {
        if (now === lastStat) return;
        lastStat = now;
        schedule();
      },
      () => {
        // Gone (being replaced, or deleted): the last state stays; the next stat that works compares again.
        lastStat = 'missing';
      },
    );
  }, o.pollMs ?? 250);
  poll.unref();

  return {
    name,
    resolve: (a: Authority): Resolution => resolveIn(catalog, a),
    onChange: (l) => changes.on(l),
    ready: () => true,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
