// Throwaway database servers inside a pod, for end-to-end tests and the demo, with real
// clients: PostgreSQL, Redis, MariaDB. Each instance gets its own temp dir
// (data, Unix socket, pid file) owned by the package's own system user, listens
// on every IPv4 and IPv6 address of the pod, and is ready when the promise
// resolves. The dir goes away when the server exits: on `lab.destroy()`, on
// `proc.stop()`, and (as a last resort) when the test process exits.
//
// The host services the Debian packages install are never touched: these run
// in the pod's network namespace, with their own dirs, sockets and ports.
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Pod } from './pod.js';
import type { PodProcess } from './pod-process.js';

/** The lab's pod subnets (see lab/lab.ts), trusted by PostgreSQL's pg_hba. */
const LAB_SUBNETS = ['198.18.0.0/15', 'fd6d:6573:6800::/64'];

interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

/** The account a Debian package created for its daemon (postgres, redis, mysql). */
function systemUser(name: string): SystemUser {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name) return { name, uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`no user ${name} in /etc/passwd: is its server package installed? (scripts/setup.sh installs it)`);
}

/** A daemon's full path: sbin dirs are searched too, since a CI PATH may lack them. */
export function findBinary(name: string): string {
  const path = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of path) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found in PATH or sbin: is its package installed? (scripts/setup.sh installs it)`);
}

const dirs = new Set<string>();
let exitHookInstalled = false;

/** A fresh dir owned by `user`, removed when `proc` (attached later) exits. */
function serviceDir(kind: string, user: SystemUser): string {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A run that ends without destroying its lab still leaves /tmp clean.
    process.on('exit', () => {
      for (const dir of dirs) removeDir(dir);
    });
  }
  const dir = mkdtempSync(join(tmpdir(), `mesh-${kind}-`));
  dirs.add(dir);
  chownSync(dir, user.uid, user.gid);
  return dir;
}

function removeDir(dir: string): void {
  // A killed postmaster's backends may still be writing for a moment: retry instead of failing.
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  dirs.delete(dir);
}

/**
 * Removes the server's dir once it has exited. Synchronously, inside the 'exit'
 * event: PodProcess.stop() (and so lab.destroy()) resolves after this has run.
 */
function removeDirOnExit(proc: PodProcess, dir: string): PodProcess {
  const child = proc.child;
  if (child.exitCode !== null || child.signalCode !== null) removeDir(dir);
  else child.once('exit', () => removeDir(dir));
  return proc;
}

/** Waits for the server's ready line; on failure stops it so its dir is not left behind. */
async function ready(proc: PodProcess, line: RegExp): Promise<PodProcess> {
  try {
    await proc.waitForLine(line);
    return proc;
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Debian installs PostgreSQL versioned under /usr/lib/postgresql/<major>/bin; take the newest. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'postgres')))
    : [];
  const newest = majors.sort((x, y) => Number(y) - Number(x))[0];
  if (newest === undefined) throw new Error(`no PostgreSQL server under ${root}: install the postgresql package (scripts/setup.sh)`);
  return join(root, newest, 'bin');
}

/**
 * PostgreSQL on `port`, superuser `postgres`, trust auth from loopback and the lab subnets.
 * initdb (~0.9 s) dominates; durability is off since the data is thrown away.
 */
export async function startPostgres(pod: Pod, port = 5432): Promise<PodProcess> {
  const user = systemUser('postgres');
  const bin = postgresBinDir();
  const dir = serviceDir('pg', user);
  const data = join(dir, 'data');
  const asUser = { uid: user.uid, gid: user.gid, env: { LANG: 'C', LC_ALL: 'C' } };
  try {
    await pod.execOk(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], asUser);
    // Clients come through the pod's proxy from a lab address, not from loopback.
    appendFileSync(join(data, 'pg_hba.conf'), LAB_SUBNETS.map((net) => `host all all ${net} trust\n`).join(''));
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  const proc = pod.spawn(join(bin, 'postgres'), [
    '-D', data,
    '-k', dir, // its Unix socket and lock file here, not in the host's /var/run/postgresql
    '-p', String(port),
    '-c', 'listen_addresses=*',
    '-c', 'fsync=off',
    '-c', 'synchronous_commit=off',
    '-c', 'full_page_writes=off',
  ], asUser);
  return ready(removeDirOnExit(proc, dir), /database system is ready to accept connections/);
}

/** Redis on `port`, no persistence, no protected mode (clients arrive from lab addresses). */
export async function startRedis(pod: Pod, port = 6379): Promise<PodProcess> {
  const user = systemUser('redis');
  const dir = serviceDir('redis', user);
  const proc = pod.spawn(findBinary('redis-server'), [
    '--port', String(port),
    // Every IPv4 address, and every IPv6 one if the pod has IPv6 ("-" = optional).
    '--bind', '* -::*',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--logfile', '',
  ], { uid: user.uid, gid: user.gid });
  return ready(removeDirOnExit(proc, dir), /Ready to accept connections/);
}

/**
 * MariaDB on `port`. No mariadb-install-db: with --skip-grant-tables the server needs no
 * system tables, any user (e.g. root) logs in without a password from anywhere, and it
 * starts on an empty datadir in ~0.15 s instead of ~1 s. Queries and ordinary tables
 * work; only features that read the mysql schema (accounts, time zones) do not.
 */
export async function startMariadb(pod: Pod, port = 3306): Promise<PodProcess> {
  const user = systemUser('mysql');
  const dir = serviceDir('mariadb', user);
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  chownSync(data, user.uid, user.gid);
  const proc = pod.spawn(findBinary('mariadbd'), [
    '--no-defaults', // must come first; ignores the host's /etc/mysql configuration
    `--datadir=${data}`,
    `--tmpdir=${dir}`,
    `--socket=${join(dir, 'mariadb.sock')}`,
    `--pid-file=${join(dir, 'mariadb.pid')}`,
    `--port=${port}`,
    // '*' is IPv4 and IPv6; '::' alone makes MariaDB listen IPv6-only.
    '--bind-address=*',
    '--skip-grant-tables',
    '--skip-name-resolve',
    '--innodb-buffer-pool-size=16M',
    '--innodb-log-file-size=4M',
    '--innodb-flush-log-at-trx-commit=0',
  ], { uid: user.uid, gid: user.gid });
  return ready(removeDirOnExit(proc, dir), /ready for connections/);
}
