// A lab is a private L2 network of pods: one "switch" namespace holding a bridge, and one
// namespace per pod wired to it by a veth pair. Everything lives in namespaces the lab creates;
// the host's root namespace gains no interface, so tests cannot disturb the machine's network.
//
// Namespace names are `mt-<owner pid, base 36>-<4 hex>` for the switch and `...-<pod>` for
// pods. Encoding the owner's pid lets any later run tell leftovers of a crashed run (owner
// dead) from namespaces of a run still in progress (owner alive), and delete only the former.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Pod, type ChildTracker } from './pod.js';
import type { PodProcess } from './pod-process.js';

const NAME = /^mt-([0-9a-z]{1,5})-[0-9a-f]{4}(?:-[0-9a-z]+)?$/;
const BRIDGE = 'br0';
const POD_NAME = /^[a-z0-9]{1,12}$/;
/** Pods get 198.18.0.N (RFC 2544 benchmarking range) and fd6d:6573:6800::N ("mes" in hex). */
const FIRST_HOST = 2;
const LAST_HOST = 254;

/** Labs not yet destroyed, for the process-exit safety net. */
const live = new Set<Lab>();

export class Lab {
  readonly prefix: string;
  readonly switchNs: string;
  #namespaces: string[] = [];
  #children = new Set<ChildProcess>();
  #processes = new Set<PodProcess>();
  #pods = new Map<string, Pod>();
  #nextHost = FIRST_HOST;
  #destroyed: Promise<void> | undefined;
  // Handed to pods so that every child they start is known to teardown.
  readonly #tracker: ChildTracker = {
    child: (child) => {
      this.#children.add(child);
      child.once('exit', () => this.#children.delete(child));
      child.once('error', () => this.#children.delete(child));
    },
    process: (proc) => {
      this.#processes.add(proc);
      proc.child.once('exit', () => this.#processes.delete(proc));
    },
  };

  private constructor(prefix: string) {
    this.prefix = prefix;
    this.switchNs = prefix;
  }

  static async create(): Promise<Lab> {
    Lab.#installExitHooks();
    reapStale();
    const lab = new Lab(`mt-${process.pid.toString(36)}-${randomBytes(2).toString('hex')}`);
    live.add(lab);
    try {
      lab.#addNamespace(lab.switchNs);
      // Snooping off: nothing on this bridge is an MLD querier, and neighbour discovery should
      // be plain flooding rather than depend on what the bridge's snooping has learned.
      ip('-n', lab.switchNs, 'link', 'add', BRIDGE, 'type', 'bridge', 'mcast_snooping', '0');
      ip('-n', lab.switchNs, 'link', 'set', BRIDGE, 'up');
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
    return lab;
  }

  /** A new pod on the switch, addressed 198.18.0.N/24 and fd6d:6573:6800::N/64. */
  async pod(name: string): Promise<Pod> {
    if (this.#destroyed) throw new Error(`lab ${this.prefix} is destroyed`);
    if (!POD_NAME.test(name)) throw new Error(`pod name ${JSON.stringify(name)} must match ${POD_NAME}`);
    if (this.#pods.has(name)) throw new Error(`pod ${name} already exists in lab ${this.prefix}`);
    const n = this.#nextHost++;
    if (n > LAST_HOST) throw new Error(`lab ${this.prefix} is full`);
    const ns = `${this.prefix}-${name}`;
    const port = `vp${n}`; // the switch side only has to be unique within the switch namespace
    this.#addNamespace(ns);
    // Before eth0 exists, so it is born with these whatever the host's defaults are. No DAD:
    // a lab address cannot be duplicated, and DAD would leave even the link-local address
    // tentative for a second or more after the link comes up.
    ip('netns', 'exec', ns, 'sysctl', '-q', '-w',
      'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.default.accept_dad=0');
    // Both ends are created from inside the switch namespace; the peer is born in the pod.
    ip('-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', this.switchNs, 'link', 'set', port, 'master', BRIDGE, 'up');
    const ipv4 = `198.18.0.${n}`;
    const ipv6 = `fd6d:6573:6800::${n}`;
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
    // A tentative address cannot be bound; nodad makes this one usable at once on its own.
    ip('-n', ns, 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    const pod = new Pod(name, ns, ipv4, ipv6, this.#tracker);
    this.#pods.set(name, pod);
    return pod;
  }

  /**
   * Gives this host (the root namespace) an address on the lab's switch,
   * 198.18.0.1 and fd6d:6573:6800::1, so that a user's shell and browser reach
   * the pods (`mesh demo`). Tests never call it: they keep the host untouched.
   * The host side is a veth whose peer lives in the switch namespace, so it
   * disappears with the lab, however the lab ends. One lab at a time may do this.
   */
  #hostIf: string | undefined;

  attachHost(): { ifname: string; ipv4: string; ipv6: string } {
    if (this.#destroyed) throw new Error(`lab ${this.prefix} is destroyed`);
    const ifname = `mesh-${this.prefix.slice(-4)}`;
    const exists = ip('-o', 'addr', 'show', 'to', '198.18.0.1/24').trim();
    if (exists !== '') throw new Error(`another lab is attached to this host already (${exists.split(/\s+/)[1]}): remove it first (mesh demo --down)`);
    ip('-n', this.switchNs, 'link', 'add', 'vhost', 'type', 'veth', 'peer', 'name', ifname, 'netns', '1');
    ip('-n', this.switchNs, 'link', 'set', 'vhost', 'master', BRIDGE, 'up');
    ip('addr', 'add', '198.18.0.1/24', 'dev', ifname);
    ip('addr', 'add', 'fd6d:6573:6800::1/64', 'dev', ifname, 'nodad');
    ip('link', 'set', ifname, 'up');
    this.#hostIf = ifname;
    return { ifname, ipv4: '198.18.0.1', ipv6: 'fd6d:6573:6800::1' };
  }

  /** Namespaces this lab created and has not yet deleted (switch first). */
  namespaces(): readonly string[] {
    return [...this.#namespaces];
  }

  /** Stops every process and deletes every namespace; safe to call more than once. */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  async #teardown(): Promise<void> {
    const failures: unknown[] = [];
    // Gracefully first, so servers under test get to run their shutdown paths.
    for (const r of await Promise.allSettled([...this.#processes].map((p) => p.stop()))) {
      if (r.status === 'rejected') failures.push(r.reason);
    }
    failures.push(...this.#teardownSync());
    if (failures.length > 0) throw new AggregateError(failures, `lab ${this.prefix}: teardown incomplete`);
  }

  /** Kill and delete without awaiting anything; also what runs at process exit. */
  #teardownSync(): unknown[] {
    const failures: unknown[] = [];
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    // The host's link first, by name: a deleted namespace takes its veth peers with it only when the
    // kernel gets round to it (sockets still closing keep it), and the next demo checks for the link.
    if (this.#hostIf !== undefined) {
      try {
        ip('link', 'del', this.#hostIf);
      } catch {
        // Already gone with the switch.
      }
      this.#hostIf = undefined;
    }
    // Pods before the switch, newest first: the reverse of creation.
    for (const ns of [...this.#namespaces].reverse()) {
      try {
        deleteNamespace(ns);
        this.#namespaces = this.#namespaces.filter((x) => x !== ns);
      } catch (err) {
        failures.push(err);
      }
    }
    live.delete(this);
    return failures;
  }

  #addNamespace(ns: string): void {
    ip('netns', 'add', ns);
    this.#namespaces.push(ns);
  }

  static #hooksInstalled = false;

  /** Tests call destroy() in after(); this covers failed tests, uncaught errors and Ctrl-C. */
  static #installExitHooks(): void {
    if (Lab.#hooksInstalled) return;
    Lab.#hooksInstalled = true;
    // 'exit' handlers must be synchronous, hence execFileSync throughout the teardown path.
    process.on('exit', () => {
      for (const lab of live) lab.#teardownSync();
    });
    // process.exit() runs the 'exit' handler above, so the signal handlers only pick the status.
    process.once('SIGINT', () => process.exit(130));
    process.once('SIGTERM', () => process.exit(143));
  }
}

/** Deletes namespaces whose owner process is gone (a crashed or SIGKILLed earlier run). */
function reapStale(): void {
  for (const ns of listNamespaces()) {
    const m = NAME.exec(ns);
    if (!m) continue;
    const owner = parseInt(m[1]!, 36);
    if (owner <= 0 || isAlive(owner)) continue;
    try {
      deleteNamespace(ns);
    } catch {
      // Another run may be reaping the same leftovers right now; whoever wins, it is gone.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, so still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  // Lines look like "name (id: 3)"; the id part is absent for namespaces nothing has peered with.
  return ip('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/**
 * `ip netns del` only removes the name: the namespace (with its addresses, and its veth still
 * plugged into the bridge) lives on while any process is inside. So kill its processes first.
 */
function deleteNamespace(ns: string): void {
  // A few rounds, in case something forked between listing and killing.
  for (let round = 0; round < 3; round++) {
    const pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  ip('netns', 'del', ns);
}

/** Synchronous on purpose: each call takes milliseconds, and the exit path cannot await. */
function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}
