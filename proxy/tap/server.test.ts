// The tap server's session keepalive: a watching client that vanishes (no FIN, no RST: here a
// relay in between that stops carrying bytes) loses its watcher once it misses a PING; one that
// answers keeps it. In-process, with the CA's test fixtures for both certificates.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeCa, makeLeaf } from '../../ca/fixtures.js';
import { TAP_WATCH_PATH } from '../../contract/tap.js';
import { Log } from '../log.js';
import { TapHub } from './hub.js';
import { createTapServer, type TapServer } from './server.js';

const PROXY_ID = 'web.default.serviceaccount.identity.cluster.local';
const TAP_ID = 'tap.mesh.serviceaccount.identity.cluster.local';

/** A TCP relay to `port` whose carrying can be stopped with both connections left open. */
class Relay {
  readonly sockets: Socket[] = [];
  #frozen = false;
  port = 0;
  readonly #server = net.createServer((down) => {
    const up = net.connect(this.target, '127.0.0.1');
    this.sockets.push(down, up);
    for (const [from, to] of [[down, up], [up, down]] as const) {
      from.on('error', () => {});
      from.on('data', (c: Buffer) => void (this.#frozen || to.write(c)));
      from.on('end', () => to.end());
    }
  });

  constructor(private readonly target: number) {}

  async open(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  freeze(): void {
    this.#frozen = true;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.#server.close();
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('tap server: session keepalive', () => {
  let hub: TapHub;
  let tap: TapServer;
  let relay: Relay;
  let clientCreds: { key: string; cert: string; ca: string };
  const clients: http2.ClientHttp2Session[] = [];

  before(async () => {
    const ca = await makeCa(new Date());
    const [proxyLeaf, tapLeaf] = await Promise.all([makeLeaf(ca, PROXY_ID, new Date()), makeLeaf(ca, TAP_ID, new Date())]);
    hub = new TapHub('test');
    tap = createTapServer({ hub, log: new Log('error', () => {}), anchorsPem: ca.anchor.certPem, tapIdentity: TAP_ID, keepaliveMs: 100, pingTimeoutMs: 300 });
    tap.update({ identity: PROXY_ID, chainPem: proxyLeaf.chainPem, keyPem: proxyLeaf.keyPem });
    const port = await freePort();
    await tap.listen({ host: '127.0.0.1', port });
    relay = await new Relay(port).open();
    clientCreds = { key: tapLeaf.keyPem, cert: tapLeaf.chainPem, ca: ca.anchor.certPem };
  });

  after(async () => {
    for (const c of clients) c.destroy();
    relay?.close();
    await tap?.close();
  });

  /** Starts watching through the relay; resolves with the session once the server said "started". */
  async function watch(): Promise<http2.ClientHttp2Session> {
    const session = http2.connect(`https://127.0.0.1:${relay.port}`, { ...clientCreds, servername: PROXY_ID });
    session.on('error', () => {});
    clients.push(session);
    const req = session.request({ ':method': 'POST', ':path': TAP_WATCH_PATH, 'content-type': 'application/json' });
    req.on('error', () => {});
    req.end('{}');
    const [chunk] = (await once(req, 'data')) as [Buffer];
    assert.match(chunk.toString(), /"kind":"started"/);
    return session;
  }

  it('a client that answers PINGs keeps its watcher; one that vanishes loses it at the next missed PING', async () => {
    const live = await watch();
    let pings = 0;
    live.on('ping', () => void pings++);
    await until(() => hub.watchers.length === 1, 'the watcher registered');
    await until(() => pings >= 4, 'four PINGs answered');
    assert.equal(hub.watchers.length, 1, 'still watching after answering them');

    // A second watcher whose every byte now stops in the relay: no FIN, no RST reaches the proxy.
    await watch();
    await until(() => hub.watchers.length === 2, 'the second watcher registered');
    relay.freeze();
    await until(() => hub.watchers.length === 0, 'both watchers gone (the relay carries neither session any more)');
  });
});
