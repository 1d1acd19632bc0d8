// Real databases through the mesh: PostgreSQL, Redis and MariaDB servers in pod B,
// their own CLI clients in pod A, both pods meshed (mesh-init + mesh-proxy), so every
// connection goes A's app → A's outbound proxy → B's inbound proxy → B's server.
//
// On their standard ports the proxies must treat them as opaque at once (no protocol
// detection), so a first query takes milliseconds. A server-speaks-first protocol on
// a port that is not opaque is the famous Linkerd stall: the proxies wait for client
// bytes that never come until detection gives up, then carry on as opaque TCP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { eventually, Lab, patienceMs, type ExecResult, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { meshInit, proxiesReady, startProxy } from './mesh.js';
import { findBinary, startMariadb, startPostgres, startRedis } from './services.js';

const psql = findBinary('psql');
const redisCli = findBinary('redis-cli');
const mariadb = findBinary('mariadb');

interface Timed extends ExecResult {
  ms: number;
}

/** Runs a client to completion, which must succeed; `ms` is its wall time, start-up included. */
async function timed(pod: Pod, cmd: string, args: string[], input?: string): Promise<Timed> {
  const started = performance.now();
  const r = await pod.exec(cmd, args, { timeoutMs: patienceMs(), ...(input === undefined ? {} : { input }) });
  const ms = Math.round(performance.now() - started);
  const how = r.timedOut ? 'timed out' : `exited with ${r.code ?? r.signal}`;
  assert.equal(r.code, 0, `${cmd} ${args.join(' ').slice(0, 200)} ${how} after ${ms} ms: ${r.stderr}`);
  return { ...r, ms };
}

/** psql's arguments for one query; no GSSAPI attempt, which would retry as a second connection. */
function psqlArgs(host: string, port: number, sql: string): string[] {
  return ['-X', '-At', '-c', sql, `host=${host} port=${port} user=postgres dbname=postgres gssencmode=disable`];
}

/** mariadb's arguments for one query; --no-defaults keeps the host's /etc/mysql out of it. */
function mariadbArgs(host: string, port: number, sql: string): string[] {
  return ['--no-defaults', '-h', host, '-P', String(port), '-u', 'root', '-N', '-B', '-e', sql];
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const escape = (s: string): string => s.replace(/[.[\]]/g, '\\$&');

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Two meshed pods: clients in A, servers in B, one proxy in each; with identity, mTLS between them. */
class Mesh {
  constructor(
    readonly a: Pod,
    readonly b: Pod,
    readonly proxyA: PodProcess,
    readonly proxyB: PodProcess,
    readonly identity: MeshIdentity | undefined,
  ) {}

  static async create(lab: Lab, proxyEnv: Record<string, string> = {}, mtls = false): Promise<Mesh> {
    const [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await Promise.all([meshInit(a), meshInit(b)]);
    let [envA, envB] = [proxyEnv, proxyEnv];
    let identity: MeshIdentity | undefined;
    if (mtls) {
      identity = await MeshIdentity.create();
      const control = await lab.pod('mesh');
      await identity.startService(control);
      const pair = await identity.meshedPair(control, 'db', 'a', b, 'b');
      [envA, envB] = [{ ...proxyEnv, ...pair.client }, { ...proxyEnv, ...pair.server }];
    }
    const [proxyA, proxyB] = await Promise.all([startProxy(a, envA), startProxy(b, envB)]);
    if (mtls) await proxiesReady(a, b);
    return new Mesh(a, b, proxyA, proxyB, identity);
  }

  /**
   * Runs `client` and checks that exactly one new connection to `dst` went out through A's
   * proxy and exactly one came in through B's (REDIRECT keeps A as its source). With mTLS,
   * opaque connections between the proxies are streams of one tunnel session (proxy/tunnel.ts):
   * B accepts the session once and logs each connection it carries as "tunnelled".
   */
  async viaBothProxies<T>(host: string, port: number, client: () => Promise<T>): Promise<T> {
    const dst = escape(hostPort(host, port));
    const out = new RegExp(`accepted direction=outbound src=\\S+ local=\\S+ dst=${dst} `);
    const from = escape(host.includes(':') ? this.a.ipv6 : this.a.ipv4);
    const into = this.identity
      ? new RegExp(`tunnelled direction=inbound src=${from}:\\d+ dst=${dst} client_id=a\\.db\\.serviceaccount\\.identity\\.cluster\\.local stream=\\d+`)
      : new RegExp(`accepted direction=inbound src=${from}:\\d+ local=\\S+ dst=${dst} `);
    const count = (proxy: PodProcess, re: RegExp): number => proxy.lines().filter((l) => re.test(l)).length;
    const before = [count(this.proxyA, out), count(this.proxyB, into)];
    const result = await client();
    // The client is done, so both proxies have accepted; only their log lines may still be in flight.
    await eventually(() => count(this.proxyA, out) > before[0]! && count(this.proxyB, into) > before[1]!, {
      what: `accepted lines for ${dst} in both proxies`,
    });
    assert.equal(count(this.proxyA, out), before[0]! + 1, `one outbound connection to ${dst} in A's proxy`);
    assert.equal(count(this.proxyB, into), before[1]! + 1, `one inbound connection to ${dst} in B's proxy`);
    if (this.identity) {
      // Meshed: B terminated A's mTLS and was told "tunnel" by the connection header.
      const secured = new RegExp(`secured direction=inbound src=\\S+ dst=${dst} client_id=a\\.db\\.serviceaccount\\.identity\\.cluster\\.local protocol=tunnel`);
      await eventually(() => assert.ok(count(this.proxyB, secured) > 0, `B secured a tunnel session to ${dst}`));
    }
    return result;
  }
}

for (const mode of ['plain', 'mtls'] as const) describe(`real databases through both proxies on their opaque ports (${mode})`, () => {
  let lab: Lab;
  let mesh: Mesh;
  const readyMs: Record<string, number> = {};

  const time = async (name: string, start: () => Promise<PodProcess>): Promise<void> => {
    const started = performance.now();
    await start();
    readyMs[name] = Math.round(performance.now() - started);
  };

  before(async () => {
    lab = await Lab.create();
    // Default detection timeout (10 s): were these ports not opaque, every first query would stall.
    mesh = await Mesh.create(lab, {}, mode === 'mtls');
    const b = mesh.b;
    await Promise.all([
      time('postgres', () => startPostgres(b, 5432)),
      time('redis', () => startRedis(b, 6379)),
      time('mariadb', () => startMariadb(b, 3306)),
    ]);
  });
  after(async () => {
    await lab?.destroy();
    await mesh?.identity?.destroy();
  });

  it('psql: select 41+1 prints 42 at once', async (t) => {
    const { a, b } = mesh;
    const r = await mesh.viaBothProxies(b.ipv4, 5432, () => timed(a, psql, psqlArgs(b.ipv4, 5432, 'select 41+1')));
    t.diagnostic(`postgres ready in ${readyMs.postgres} ms; psql took ${r.ms} ms`);
    assert.equal(r.stdout, '42\n');
    assert.ok(r.ms < 1000, `psql took ${r.ms} ms`);
  });

  it('psql over IPv6 too', async () => {
    const { a, b } = mesh;
    const r = await mesh.viaBothProxies(b.ipv6, 5432, () =>
      timed(a, psql, psqlArgs(b.ipv6, 5432, 'select inet_server_addr()')));
    // B's inbound proxy dials the original destination, so the server sees B's own address.
    assert.equal(r.stdout, `${b.ipv6}\n`);
    assert.ok(r.ms < 1000, `psql took ${r.ms} ms`);
  });

  it('redis-cli: SET then GET round-trips at once', async (t) => {
    const { a, b } = mesh;
    const cli = (...args: string[]): Promise<Timed> => timed(a, redisCli, ['-h', b.ipv4, '-p', '6379', ...args]);
    const set = await mesh.viaBothProxies(b.ipv4, 6379, () => cli('SET', 'greeting', 'hello through the mesh'));
    t.diagnostic(`redis ready in ${readyMs.redis} ms; first redis-cli took ${set.ms} ms`);
    assert.equal(set.stdout, 'OK\n');
    assert.ok(set.ms < 1000, `redis-cli SET took ${set.ms} ms`);
    const get = await mesh.viaBothProxies(b.ipv4, 6379, () => cli('GET', 'greeting'));
    assert.equal(get.stdout, 'hello through the mesh\n');
  });

  it('mariadb: select 6*7 prints 42 at once (server speaks first, port 3306 is opaque)', async (t) => {
    const { a, b } = mesh;
    const r = await mesh.viaBothProxies(b.ipv4, 3306, () => timed(a, mariadb, mariadbArgs(b.ipv4, 3306, 'select 6*7')));
    t.diagnostic(`mariadb ready in ${readyMs.mariadb} ms; mariadb client took ${r.ms} ms`);
    assert.equal(r.stdout, '42\n');
    assert.ok(r.ms < 1000, `mariadb took ${r.ms} ms`);
  });

  it('carries a 5 MB query result byte for byte (psql)', async (t) => {
    const { a, b } = mesh;
    // 156,250 distinct md5 hex digests: 5,000,000 characters whose order matters.
    const n = 156_250;
    const expected = Array.from({ length: n }, (_, i) => createHash('md5').update(String(i + 1)).digest('hex')).join('');
    const sql = `select string_agg(md5(i::text), '' order by i) from generate_series(1, ${n}) i`;
    const r = await mesh.viaBothProxies(b.ipv4, 5432, () => timed(a, psql, psqlArgs(b.ipv4, 5432, sql)));
    t.diagnostic(`5 MB through psql in ${r.ms} ms`);
    assert.equal(r.stdout.length, expected.length + 1);
    assert.equal(sha256(r.stdout), sha256(`${expected}\n`));
  });

  it('carries a 5 MB value both ways byte for byte (redis-cli -x SET, GET)', async (t) => {
    const { a, b } = mesh;
    const value = randomBytes(3_750_000).toString('base64'); // 5,000,000 characters
    const cli = (args: string[], input?: string): Promise<Timed> => timed(a, redisCli, ['-h', b.ipv4, '-p', '6379', ...args], input);
    const set = await mesh.viaBothProxies(b.ipv4, 6379, () => cli(['-x', 'SET', 'big'], value));
    assert.equal(set.stdout, 'OK\n');
    const get = await mesh.viaBothProxies(b.ipv4, 6379, () => cli(['GET', 'big']));
    t.diagnostic(`5 MB up in ${set.ms} ms, down in ${get.ms} ms`);
    assert.equal(get.stdout.length, value.length + 1);
    assert.equal(sha256(get.stdout), sha256(`${value}\n`));
  });
});

describe('databases on ports that are not opaque, server-first window off (detection timeout 500 ms)', () => {
  let lab: Lab;
  let mesh: Mesh;

  before(async () => {
    lab = await Lab.create();
    // The window off: the stall as it was (and still is for MESH_PROXY_SERVER_FIRST_WINDOW=0);
    // test/server-first.test.ts shows the same server on 3307 answering in milliseconds.
    mesh = await Mesh.create(lab, { MESH_PROXY_DETECT_TIMEOUT: '500ms', MESH_PROXY_SERVER_FIRST_WINDOW: '0' });
    await Promise.all([startMariadb(mesh.b, 3307), startRedis(mesh.b, 6380)]);
  });
  after(() => lab?.destroy());

  it('MariaDB (server speaks first) stalls until detection gives up, then works as opaque TCP', async (t) => {
    const { a, b } = mesh;
    const r = await mesh.viaBothProxies(b.ipv4, 3307, () => timed(a, mariadb, mariadbArgs(b.ipv4, 3307, 'select 6*7')));
    t.diagnostic(`mariadb client on 3307 took ${r.ms} ms`);
    assert.equal(r.stdout, '42\n');
    // The greeting waits for detection in at least one proxy (each gives up after 500 ms).
    assert.ok(r.ms >= 400, `mariadb on a non-opaque port took only ${r.ms} ms: no detection stall`);
  });

  it('Redis (client speaks first) is not held up: the first bytes decide at once', async (t) => {
    const { a, b } = mesh;
    const r = await mesh.viaBothProxies(b.ipv4, 6380, () => timed(a, redisCli, ['-h', b.ipv4, '-p', '6380', 'PING']));
    t.diagnostic(`redis-cli on 6380 took ${r.ms} ms`);
    assert.equal(r.stdout, 'PONG\n');
    assert.ok(r.ms < 400, `redis-cli on a non-opaque port took ${r.ms} ms: detection waited for more than the first bytes`);
  });
});
