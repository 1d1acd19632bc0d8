// Mutual TLS between proxies on real sockets: a MeshTls client dialling a
// MeshTls server that terminates raw TCP connections, certificates from a test
// CA on the real clock (OpenSSL checks validity against it).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { makeCa, makeLeaf, type TestCa } from '../../ca/fixtures.js';
import { ProxyError, type ProxyErrorCode } from '../errors.js';
import { encodeHeader, readHeader } from './header.js';
import { MeshTls, resetAndDestroy, retireAtExpiry, TRANSPORT_ALPN } from './tls.js';
import { CLIENT, closeAll, closed, credentials, Inbound, listen, meshTlsPair, OTHER, SERVER, TIMEOUT_MS, track, type Credentials } from './tls-kit.js';

const HEADER = encodeHeader({ protocol: 'opaque', port: 5432 });

function rejectsWith(promise: Promise<unknown>, code: ProxyErrorCode, message?: RegExp): Promise<void> {
  return assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ProxyError, `expected a ProxyError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

/** Connects, tracking the socket and giving it an error listener before any I/O can reach it. */
async function dial(mesh: MeshTls, inbound: Inbound, peer = SERVER): Promise<TLSSocket> {
  // Not a session: Node's TLS socket all along.
  const s = (await mesh.connect(inbound.target, peer, HEADER, TIMEOUT_MS)) as TLSSocket;
  s.on('error', () => {});
  return track(s);
}

/** Sends `text` on `from` and resolves with what `to` receives of that length. */
async function echo(from: Socket, to: Socket, text: string): Promise<string> {
  let got = '';
  let onData = (_d: Buffer): void => {};
  let onGone = (): void => {};
  const whole = new Promise<void>((resolve, reject) => {
    onData = (d: Buffer): void => void ((got += d.toString('latin1')).length >= text.length && resolve());
    onGone = (): void => reject(new Error(`connection gone after ${JSON.stringify(got)}`));
  });
  to.on('data', onData).once('end', onGone).once('close', onGone).resume();
  from.write(text);
  try {
    await whole;
  } finally {
    to.removeListener('data', onData).removeListener('end', onGone).removeListener('close', onGone).pause();
  }
  return got;
}

/** A secured pair: the client socket and the server's view of it, with the header read off. */
async function securedPair(client: MeshTls, inbound: Inbound): Promise<{ c: TLSSocket; s: TLSSocket; clientId: string }> {
  const [c, t] = await Promise.all([dial(client, inbound), inbound.next()]);
  assert.equal(t.kind, 'secured', JSON.stringify(t.kind === 'refused' ? t : t.kind));
  if (t.kind !== 'secured') throw new Error('unreachable');
  t.socket.on('error', () => {});
  assert.deepEqual(await readHeader(t.socket, TIMEOUT_MS), { kind: 'header', header: { protocol: 'opaque', port: 5432 } });
  return { c, s: t.socket as TLSSocket, clientId: t.clientId };
}

describe('MeshTls', { timeout: 30_000 }, () => {
  let ca: TestCa;
  let stranger: TestCa;
  let serverCreds: Credentials;
  let clientCreds: Credentials;
  let server: MeshTls;
  let client: MeshTls;
  let inbound: Inbound;

  before(async () => {
    const now = new Date();
    [ca, stranger] = await Promise.all([makeCa(now), makeCa(now)]);
    ({ serverCreds, clientCreds, server, client, inbound } = await meshTlsPair(ca));
  });

  after(closeAll);

  it('secures a connection both ways, the client’s identity learned and the header first', async () => {
    const { c, s, clientId } = await securedPair(client, inbound);
    assert.equal(clientId, CLIENT);
    assert.equal(c.alpnProtocol, TRANSPORT_ALPN);
    assert.equal(s.alpnProtocol, TRANSPORT_ALPN);
    assert.equal(c.getProtocol(), 'TLSv1.3');
    assert.equal(c.getPeerCertificate().subjectaltname, `DNS:${SERVER}`);
    assert.equal((s as unknown as { servername?: string }).servername, SERVER, 'SNI names the identity the server must prove');
    assert.equal(await echo(c, s, 'after the header'), 'after the header');
    assert.equal(await echo(s, c, 'and back'), 'and back');
    c.destroy();
  });

  it('is not ready, and refuses both ways, before its first certificate', async () => {
    const fresh = new MeshTls(CLIENT, ca.anchor.certPem, TIMEOUT_MS);
    assert.equal(fresh.ready(), false);
    await rejectsWith(fresh.connect(inbound.target, SERVER, HEADER, TIMEOUT_MS), 'MESH_IDENTITY_NOT_READY');
    const raw = track(new net.Socket());
    assert.deepEqual(await fresh.terminate(raw), { kind: 'refused', code: 'MESH_IDENTITY_NOT_READY', reason: 'this proxy holds no certificate yet' });
    assert.equal(client.ready(), true);
  });

  it('refuses a server whose certificate names another identity', async () => {
    const connecting = client.connect(inbound.target, OTHER, HEADER, TIMEOUT_MS);
    const serverSide = inbound.next();
    await rejectsWith(connecting, 'MESH_PEER_IDENTITY_MISMATCH', new RegExp(`presented ${SERVER}, expected ${OTHER}`));
    // TLS 1.3: the client judges after its Finished, so the server may have secured it already; it must not hang.
    const t = await serverSide;
    if (t.kind === 'secured') t.socket.on('error', () => {}).destroy();
  });

  it('refuses a server certified by another anchor', async () => {
    const foreign = new MeshTls(SERVER, stranger.anchor.certPem, TIMEOUT_MS);
    foreign.update(await credentials(stranger, SERVER));
    const other = await new Inbound(foreign).open();
    const connecting = client.connect(other.target, SERVER, HEADER, TIMEOUT_MS);
    await rejectsWith(connecting, 'MESH_PEER_CERT_INVALID', /(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    const t = await other.next();
    assert.equal(t.kind, 'refused', 'the client hung up in the handshake');
  });

  it('refuses a client certified by another anchor, saying why', async () => {
    const foreign = new MeshTls(CLIENT, ca.anchor.certPem, TIMEOUT_MS);
    foreign.update(await credentials(stranger, CLIENT));
    // The client finishes first in TLS 1.3 and may think itself connected: its fate is not the point.
    const connecting = foreign.connect(inbound.target, SERVER, HEADER, TIMEOUT_MS).then(
      (s) => track(s).on('error', () => {}),
      () => undefined,
    );
    const t = await inbound.next();
    assert.equal(t.kind, 'refused');
    if (t.kind === 'refused') {
      assert.equal(t.code, 'MESH_CLIENT_CERT_INVALID');
      assert.match(t.reason, /^client certificate refused: (UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
    }
    await connecting;
  });

  it('refuses a client without a certificate, saying so', async () => {
    const plain = track(
      tls.connect({ host: '127.0.0.1', port: inbound.port, servername: SERVER, ca: ca.anchor.certPem, ALPNProtocols: [TRANSPORT_ALPN], minVersion: 'TLSv1.3' }),
    );
    plain.on('error', () => {});
    const t = await inbound.next();
    assert.equal(t.kind, 'refused');
    if (t.kind === 'refused') {
      assert.equal(t.code, 'MESH_CLIENT_CERT_INVALID');
      // Node reports a missing certificate as UNABLE_TO_GET_ISSUER_CERT; the reason must not.
      assert.equal(t.reason, 'client certificate refused: no client certificate');
    }
    await closed(plain);
  });

  it('refuses a server that does not speak the mesh’s ALPN', async () => {
    const plain = tls.createServer({ cert: serverCreds.chainPem, key: serverCreds.keyPem, ca: ca.anchor.certPem }, (s) => track(s).on('error', () => {}));
    const port = await listen(plain);
    await rejectsWith(client.connect({ address: '127.0.0.1', port, family: 4 }, SERVER, HEADER, TIMEOUT_MS), 'MESH_PEER_NOT_MESHED', new RegExp(TRANSPORT_ALPN));
  });

  it('gives up on a server that accepts TCP but never answers TLS', async () => {
    // Reads (and ignores) the ClientHello, so it notices the hang-up.
    const silent = net.createServer((s) => track(s).on('error', () => {}).resume());
    const port = await listen(silent);
    const accepted = once(silent, 'connection') as Promise<[Socket]>;
    const start = performance.now();
    await rejectsWith(client.connect({ address: '127.0.0.1', port, family: 4 }, SERVER, HEADER, 200), 'MESH_CONNECT_TIMEOUT', /within 200 ms/);
    assert.ok(performance.now() - start >= 190, 'not before its time');
    // And hangs up rather than leaving the connection behind.
    const [peer] = await accepted;
    await closed(peer);
  });

  it('presents a new certificate on new connections after update(), established ones carry on', async () => {
    const old = await securedPair(client, inbound);
    assert.equal(old.c.getPeerCertificate().serialNumber.toUpperCase(), serverCreds.serial);
    assert.equal(old.s.getPeerCertificate().serialNumber.toUpperCase(), clientCreds.serial);

    const [newServer, newClient] = await Promise.all([credentials(ca, SERVER), credentials(ca, CLIENT)]);
    assert.notEqual(newServer.serial, serverCreds.serial);
    server.update(newServer);
    client.update(newClient);

    const fresh = await securedPair(client, inbound);
    assert.equal(fresh.c.getPeerCertificate().serialNumber.toUpperCase(), newServer.serial);
    assert.equal(fresh.s.getPeerCertificate().serialNumber.toUpperCase(), newClient.serial);
    assert.equal(fresh.clientId, CLIENT);

    assert.equal(await echo(old.c, old.s, 'still here'), 'still here');
    assert.equal(await echo(old.s, old.c, 'me too'), 'me too');
    assert.equal(old.c.getPeerCertificate().serialNumber.toUpperCase(), serverCreds.serial);
    old.c.destroy();
    fresh.c.destroy();
    serverCreds = newServer;
    clientCreds = newClient;
  });

  /** Resets `from` and reports what its peer saw: an error code, and whether a clean end came first. */
  async function reset(from: TLSSocket, peer: TLSSocket): Promise<{ error: string | undefined; ended: boolean }> {
    let error: string | undefined;
    let ended = false;
    // Whichever comes first: a half-open peer would wait for ever after a clean end.
    const first = new Promise<void>((resolve) => {
      peer.once('error', (e: NodeJS.ErrnoException) => ((error = e.code), resolve()));
      peer.once('end', () => ((ended = true), resolve()));
      peer.once('close', () => resolve());
    });
    peer.on('error', () => {});
    peer.resume();
    resetAndDestroy(from);
    assert.equal(from.destroyed, true);
    await first;
    peer.destroy();
    return { error, ended };
  }

  it('retires a session when the first certificate that authenticated it expires, on both sides', async () => {
    // A client certificate with ~3 s to live (whole seconds), the server's for a day.
    const leaf = await makeLeaf(ca, CLIENT, new Date(), 3_000);
    const shortLived = new MeshTls(CLIENT, ca.anchor.certPem, TIMEOUT_MS);
    shortLived.update({ identity: CLIENT, chainPem: leaf.chainPem, keyPem: leaf.keyPem });
    const expires = Date.parse(new X509Certificate(leaf.certPem).validTo);
    const { c, s } = await securedPair(shortLived, inbound);
    const retired = (sock: TLSSocket): Promise<number> => new Promise((resolve) => retireAtExpiry(sock, () => resolve(Date.now())));
    const [atClient, atServer] = await Promise.all([retired(c), retired(s)]);
    for (const at of [atClient, atServer]) {
      assert.ok(at >= expires, `retired ${expires - at} ms before the certificate expired`);
      assert.ok(at < expires + 1000, `retired ${at - expires} ms after the certificate expired`);
    }
    // Cancelled, nothing is called; a socket that is not TLS is never retired.
    let called = false;
    retireAtExpiry(c, () => (called = true))();
    retireAtExpiry(new net.Socket(), () => (called = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(called, false);
  });

  it('resets a secured connection from the client side: the server sees ECONNRESET', async () => {
    const { c, s } = await securedPair(client, inbound);
    // The server's first write also flushes its TLS 1.3 session tickets (see the next test).
    await echo(s, c, 'hello');
    assert.deepEqual(await reset(c, s), { error: 'ECONNRESET', ended: false });
  });

  it('resets a secured connection from the server side: the client sees ECONNRESET', async () => {
    const { c, s } = await securedPair(client, inbound);
    await echo(c, s, 'data in flight first');
    assert.deepEqual(await reset(s, c), { error: 'ECONNRESET', ended: false });
  });
});
