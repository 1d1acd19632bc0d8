import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { eventually, Lab, type Pod } from './index.js';

const node = process.execPath;

// Echoes every connection back to its sender; says "listening" once it can accept.
const ECHO_SERVER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); })
  .listen(Number(port), host, () => console.log('listening'));
`;

// Sends its message, half-closes, and prints whatever comes back.
const ECHO_CLIENT = `
const net = require('node:net');
const [host, port, message] = process.argv.slice(1);
const got = [];
const s = net.connect({ host, port: Number(port) }, () => s.end(message));
s.on('data', (b) => got.push(b));
s.on('end', () => process.stdout.write(Buffer.concat(got)));
s.on('error', (e) => { console.error(e.code ?? e.message); process.exit(2); });
`;

function netnsList(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);
}

function hostLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':')[1]!.trim());
}

/** True while the pid is a live process; a zombie has already been killed. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function echoThrough(client: Pod, server: Pod, host: string, message: string): Promise<string> {
  const echo = server.spawn(node, ['-e', ECHO_SERVER, host, '7000']);
  await echo.waitForLine(/^listening$/);
  const r = await client.execOk(node, ['-e', ECHO_CLIENT, host, '7000', message]);
  await echo.stop();
  return r.stdout;
}

describe('a lab with two pods', () => {
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  const linksBefore = hostLinks();

  before(async () => {
    lab = await Lab.create();
    a = await lab.pod('a');
    b = await lab.pod('b');
  });
  after(() => lab.destroy());

  it('adds nothing to the host namespace', () => {
    assert.deepEqual(hostLinks(), linksBefore);
  });

  it('addresses pods in order on both families', async () => {
    assert.deepEqual([a.ipv4, a.ipv6], ['198.18.0.2', 'fd6d:6573:6800::2']);
    assert.deepEqual([b.ipv4, b.ipv6], ['198.18.0.3', 'fd6d:6573:6800::3']);
    const addrs = (await b.execOk('ip', ['-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
    assert.match(addrs, /inet 198\.18\.0\.3\/24/);
    assert.match(addrs, /inet6 fd6d:6573:6800::3\/64/);
    assert.doesNotMatch(addrs, /tentative/);
  });

  it('carries TCP between pods over IPv4', async () => {
    assert.equal(await echoThrough(a, b, b.ipv4, 'hello over v4'), 'hello over v4');
  });

  it('carries TCP between pods over IPv6', async () => {
    assert.equal(await echoThrough(b, a, a.ipv6, 'hello over v6'), 'hello over v6');
  });

  it('runs commands as the requested uid, with gid and no supplementary groups', async () => {
    assert.equal((await a.execOk('id', ['-u'], { uid: 2102 })).stdout, '2102\n');
    assert.equal((await a.execOk('id', ['-G'], { uid: 2102 })).stdout, '2102\n');
    assert.equal((await a.execOk('id', ['-g'], { uid: 2102, gid: 2103 })).stdout, '2103\n');
  });

  it('passes stdin and environment', async () => {
    assert.equal((await a.execOk('cat', [], { input: 'from stdin' })).stdout, 'from stdin');
    const r = await a.execOk('sh', ['-c', 'echo "$MESH_X"'], { env: { MESH_X: 'from env' } });
    assert.equal(r.stdout, 'from env\n');
  });

  it('reports a failing exit from exec and rejects from execOk', async () => {
    const script = ['-c', 'echo oops >&2; exit 3'];
    const r = await a.exec('sh', script);
    assert.deepEqual([r.code, r.stderr], [3, 'oops\n']);
    await assert.rejects(a.execOk('sh', script), /sh -c echo oops.*exited with code 3.*oops/s);
  });

  it('kills an exec that overruns its timeout', async () => {
    const r = await a.exec('sleep', ['30'], { timeoutMs: 100 });
    assert.deepEqual([r.code, r.signal, r.timedOut], [null, 'SIGKILL', true]);
  });

  it('rejects waitForLine as soon as the process exits', async () => {
    const p = a.spawn(node, ['-e', 'console.log("bye"); process.exit(3)']);
    await assert.rejects(p.waitForLine(/never/, 60_000), /exited before.*exit code 3.*bye/s);
  });

  it('stop() escalates to SIGKILL for a process that ignores SIGTERM', async () => {
    const p = a.spawn(node, ['-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)']);
    await p.waitForLine(/ready/);
    await p.stop();
    assert.equal(p.child.signalCode, 'SIGKILL');
  });
});

describe('lab teardown', () => {
  it('destroy() kills everything inside and deletes the namespaces, idempotently', async () => {
    const lab = await Lab.create();
    const pod = await lab.pod('x');
    const server = pod.spawn(node, ['-e', ECHO_SERVER, pod.ipv4, '7000']);
    await server.waitForLine(/listening/);
    // A daemon the harness never saw: only the namespace knows about it.
    const daemon = Number((await pod.execOk('sh', ['-c', 'sleep 600 >/dev/null 2>&1 & echo $!'])).stdout);
    assert.ok(running(daemon));
    const made = lab.namespaces();
    assert.equal(made.length, 2);

    await lab.destroy();
    await lab.destroy();

    assert.deepEqual(netnsList().filter((ns) => made.includes(ns)), []);
    assert.notEqual(server.child.exitCode ?? server.child.signalCode, null);
    await eventually(() => !running(daemon), { what: `untracked daemon ${daemon} to die` });
  });

  it('Lab.create() reaps namespaces of a dead owner and keeps those of a live one', async () => {
    // Pids are always below pid_max, which can never exceed 2^22, so this owner cannot exist.
    const dead = `mt-${(2 ** 22).toString(36)}-dead`;
    const stale = [dead, `${dead}-a`];
    const alive = 'mt-1-beef'; // pid 1 is always running
    for (const ns of [...stale, alive]) execFileSync('ip', ['netns', 'add', ns]);
    // A leftover server must die too, or the namespace would outlive its name.
    const leftover = spawn('ip', ['netns', 'exec', `${dead}-a`, 'sleep', '600'], { stdio: 'ignore' });
    const leftoverExit = once(leftover, 'exit');
    let lab: Lab | undefined;
    try {
      const inside = () => execFileSync('ip', ['netns', 'pids', `${dead}-a`], { encoding: 'utf8' });
      await eventually(() => inside().split('\n').includes(String(leftover.pid)), { what: 'leftover to enter its namespace' });
      lab = await Lab.create();
      const names = netnsList();
      assert.deepEqual(stale.filter((ns) => names.includes(ns)), []);
      assert.ok(names.includes(alive), 'namespace of a live owner was reaped');
      assert.deepEqual(await leftoverExit, [null, 'SIGKILL']);
    } finally {
      leftover.kill('SIGKILL');
      for (const ns of [...stale, alive]) {
        if (netnsList().includes(ns)) execFileSync('ip', ['netns', 'del', ns]);
      }
      await lab?.destroy();
    }
  });
});
