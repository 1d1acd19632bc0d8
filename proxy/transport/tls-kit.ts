// What the transport tests share: a test CA's workload credentials, an inbound side that
// terminates every connection it accepts, and the sockets and servers they open (closed in
// after(), so a failing test cannot hang its file).
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { makeLeaf, type TestCa } from '../../ca/fixtures.js';
import { MeshTls, type Terminated, type WorkloadCredentials } from './tls.js';

export const SERVER = 'web.default.serviceaccount.identity.cluster.local';
export const CLIENT = 'client.emojivoto.serviceaccount.identity.cluster.local';
export const OTHER = 'db.default.serviceaccount.identity.cluster.local';
export const TIMEOUT_MS = 5_000;

export async function credentials(ca: TestCa, identity: string): Promise<WorkloadCredentials & { serial: string }> {
  const leaf = await makeLeaf(ca, identity, new Date());
  return { identity, chainPem: leaf.chainPem, keyPem: leaf.keyPem, serial: new X509Certificate(leaf.certPem).serialNumber.toUpperCase() };
}

/** Everything the tests open, destroyed in after() so a failing test cannot hang the file. */
const sockets = new Set<Socket>();
const servers = new Set<Server>();
export function track<S extends Socket>(s: S): S {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
  return s;
}

/** Resolves at 'close' (an 'error' on the way is the caller's to judge, unlike events.once). */
export function closed(s: Socket): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

export async function listen(server: Server): Promise<number> {
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A proxy's inbound side: accepts TCP and hands every connection to `mesh.terminate()`, results in order. */
export class Inbound {
  readonly results: Promise<Terminated>[] = [];
  #waiters: Array<(p: Promise<Terminated>) => void> = [];
  port = 0;
  constructor(readonly mesh: MeshTls) {}

  async open(): Promise<this> {
    // As the proxy's own listener (proxy/listener.ts): a FIN one way leaves the other open.
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (raw) => {
      track(raw).on('error', () => {});
      const result = this.mesh.terminate(raw).then((t) => {
        if (t.kind === 'secured') track(t.socket);
        return t;
      });
      const waiter = this.#waiters.shift();
      if (waiter) waiter(result);
      else this.results.push(result);
    });
    this.port = await listen(server);
    return this;
  }

  /** The verdict on the next connection to arrive. */
  next(): Promise<Terminated> {
    const ready = this.results.shift();
    if (ready) return ready;
    return new Promise<Promise<Terminated>>((resolve) => this.#waiters.push(resolve)).then((p) => p);
  }

  get target(): { address: string; port: number; family: 4 } {
    return { address: '127.0.0.1', port: this.port, family: 4 };
  }
}

/** Destroys every socket and closes every server the tests opened. */
export function closeAll(): void {
  // Newest first: a TLS socket before the TCP socket under it (destroying the TCP socket while
  // a TLS layer still reads it crashes node).
  for (const s of [...sockets].reverse()) s.destroy();
  for (const s of servers) s.close();
}

export type Credentials = Awaited<ReturnType<typeof credentials>>;

/** A server proxy's MeshTls (SERVER, behind an Inbound) and a client proxy's (CLIENT), certified by `ca`. */
export async function meshTlsPair(ca: TestCa): Promise<{ serverCreds: Credentials; clientCreds: Credentials; server: MeshTls; client: MeshTls; inbound: Inbound }> {
  const [serverCreds, clientCreds] = await Promise.all([credentials(ca, SERVER), credentials(ca, CLIENT)]);
  const server = new MeshTls(SERVER, ca.anchor.certPem, TIMEOUT_MS);
  server.update(serverCreds);
  const client = new MeshTls(CLIENT, ca.anchor.certPem, TIMEOUT_MS);
  client.update(clientCreds);
  return { serverCreds, clientCreds, server, client, inbound: await new Inbound(server).open() };
}
