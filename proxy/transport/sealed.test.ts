// Sealed sessions on real sockets: a MeshTls client dialling an HTTP/2 session to a MeshTls
// server, both taking the records over from Node's TLS at handshake-done; and each side
// against a peer that keeps OpenSSL's record layer, so the records are checked against a
// real TLS 1.3 stack both ways.
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { makeCa, makeLeaf, type TestCa } from '../../ca/fixtures.js';
import { encodeHeader, readHeader } from './header.js';
import { sealedOf, type SealedChannel } from './sealed.js';
import { MeshTls, retireAtExpiry, SESSION_ALPN, TRANSPORT_ALPN } from './tls.js';
import { CLIENT, closeAll, Inbound, listen, meshTlsPair, SERVER, TIMEOUT_MS, track, type Credentials } from './tls-kit.js';

const H2_HEADER = encodeHeader({ protocol: 'h2', port: 8080 });

/** Everything a channel delivers, copied (the views are valid during the call only). */
function collect(ch: SealedChannel): { bytes: () => Buffer; until: (n: number) => Promise<Buffer> } {
  const parts: Buffer[] = [];
  let have = 0;
  let waiter: { n: number; resolve: () => void } | undefined;
  ch.listen((view) => {
    parts.push(Buffer.from(view));
    have += view.length;
    if (waiter !== undefined && have >= waiter.n) waiter.resolve();
  });
  const bytes = (): Buffer => Buffer.concat(parts);
  return {
    bytes,
    until: (n) => (have >= n ? Promise.resolve(bytes()) : new Promise<void>((resolve) => (waiter = { n, resolve })).then(bytes)),
  };
}

/** `total` random bytes written through the channel in pieces of random length (1 byte to 100 KiB), several per turn. */
async function pour(ch: SealedChannel, total: number): Promise<Buffer> {
  const data = randomBytes(total);
  let off = 0;
  while (off < total) {
    const pieces: Buffer[] = [];
    for (let i = 0; i < 3 && off < total; i++) {
      const n = Math.min(total - off, 1 + Math.floor(Math.random() * 100 * 1024));
      pieces.push(data.subarray(off, off + n));
      off += n;
    }
    if (!ch.write(pieces.length === 1 ? pieces[0]! : pieces)) await once(ch.socket, 'drain');
    else await new Promise((r) => setImmediate(r));
  }
  return data;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `size` random bytes poured each way at once: each side receives exactly what the other wrote. */
async function bothWays(c: SealedChannel, s: SealedChannel, size: number): Promise<void> {
  const atServer = collect(s);
  const atClient = collect(c);
  const [up, down] = await Promise.all([pour(c, size), pour(s, size)]);
  assert.equal(sha(await atServer.until(size)), sha(up));
  assert.equal(sha(await atClient.until(size)), sha(down));
}

describe('sealed mTLS sessions', { timeout: 60_000 }, () => {
  let ca: TestCa;
  let serverCreds: Credentials;
  let clientCreds: Credentials;
  let client: MeshTls;
  let inbound: Inbound;

  before(async () => {
    ca = await makeCa(new Date());
    ({ serverCreds, clientCreds, client, inbound } = await meshTlsPair(ca));
  });
  after(closeAll);

  /** A session both sides sealed, its connection header read off on the server's side. */
  async function sealedPair(): Promise<{ c: SealedChannel; s: SealedChannel }> {
    const [cs, t] = await Promise.all([client.connect(inbound.target, SERVER, H2_HEADER, TIMEOUT_MS, true), inbound.next()]);
    track(cs).on('error', () => {});
    assert.equal(t.kind, 'secured');
    if (t.kind !== 'secured') throw new Error('unreachable');
    t.socket.on('error', () => {});
    const c = sealedOf(cs);
    const s = sealedOf(t.socket);
    assert.ok(c !== undefined && s !== undefined, 'both sides sealed');
    assert.deepEqual(await readHeader(t.socket, TIMEOUT_MS), { kind: 'header', header: { protocol: 'h2', port: 8080 } });
    t.socket.resume();
    return { c, s };
  }

  it('takes an HTTP/2 session’s records over on both sides, on the sockets it was dialled and accepted on', async () => {
    const [cs, t] = await Promise.all([client.connect(inbound.target, SERVER, H2_HEADER, TIMEOUT_MS, true), inbound.next()]);
    track(cs).on('error', () => {});
    assert.equal(t.kind, 'secured');
    if (t.kind !== 'secured') return;
    // Plain TCP sockets now: Node's TLS layer is gone from both.
    assert.equal(cs instanceof tls.TLSSocket, false);
    assert.equal(t.socket instanceof tls.TLSSocket, false);
    assert.equal(t.clientId, CLIENT);
    const c = sealedOf(cs)!;
    const s = sealedOf(t.socket)!;
    assert.equal(c.facts.peerIdentity, SERVER);
    assert.equal(s.facts.peerIdentity, CLIENT);
    // The first of the two leaves to expire bounds the session, as seen from either side.
    const leafEnd = (pem: string): number => Date.parse(new X509Certificate(pem).validTo);
    const first = Math.min(leafEnd(serverCreds.chainPem), leafEnd(clientCreds.chainPem));
    assert.ok(Number.isFinite(first));
    assert.equal(c.facts.expiresAt, first);
    assert.equal(s.facts.expiresAt, first);
    assert.deepEqual(await readHeader(t.socket, TIMEOUT_MS), { kind: 'header', header: { protocol: 'h2', port: 8080 } });
    t.socket.resume();
    const atServer = collect(s);
    c.write(Buffer.from('after the header'));
    assert.equal((await atServer.until(16)).toString(), 'after the header');
    const atClient = collect(c);
    s.write([Buffer.from('and '), Buffer.from('back')]);
    assert.equal((await atClient.until(8)).toString(), 'and back');
    cs.destroy();
  });

  it('retires a sealed session when the first certificate that authenticated it expires, on both sides', async () => {
    // A client certificate with ~3 s to live (whole seconds), the server's for a day.
    const leaf = await makeLeaf(ca, CLIENT, new Date(), 3_000);
    const shortLived = new MeshTls(CLIENT, ca.anchor.certPem, TIMEOUT_MS);
    shortLived.update({ identity: CLIENT, chainPem: leaf.chainPem, keyPem: leaf.keyPem });
    const expires = Date.parse(new X509Certificate(leaf.certPem).validTo);
    const [cs, t] = await Promise.all([shortLived.connect(inbound.target, SERVER, H2_HEADER, TIMEOUT_MS, true), inbound.next()]);
    track(cs).on('error', () => {});
    assert.ok(t.kind === 'secured' && sealedOf(cs) !== undefined && sealedOf(t.socket) !== undefined);
    const retired = (sock: Socket): Promise<number> => new Promise((resolve) => retireAtExpiry(sock, () => resolve(Date.now())));
    const [atClient, atServer] = await Promise.all([retired(cs), retired(t.socket)]);
    for (const at of [atClient, atServer]) {
      assert.ok(at >= expires, `retired ${expires - at} ms before the certificate expired`);
      assert.ok(at < expires + 2_000, `retired ${at - expires} ms after the certificate expired`);
    }
    cs.destroy();
  });

  it('carries 4 MiB each way at once, written in pieces of any length, whole and in order', async () => {
    const { c, s } = await sealedPair();
    await bothWays(c, s, 4 * 1024 * 1024);
    c.socket.destroy();
  });

  it('seals a turn longer than one output buffer into several, whole and in order: 24 pieces of 64 KiB, then 1 MiB in one', async () => {
    const { c, s } = await sealedPair();
    const atServer = collect(s);
    const pieces = Array.from({ length: 24 }, () => randomBytes(64 * 1024));
    const one = randomBytes(1024 * 1024);
    c.write(pieces);
    c.write(one);
    const size = 24 * 64 * 1024 + one.length;
    assert.equal(sha(await atServer.until(size)), sha(Buffer.concat([...pieces, one])));
    assert.equal(atServer.bytes().length, size, 'nothing more, nothing repeated');
    c.socket.destroy();
  });

  it('updates its keys (KeyUpdate) both ways and goes on', async () => {
    const { c, s } = await sealedPair();
    // A KeyUpdate every 5 records each way, so both sides open many records under new keys.
    c.rekeyAfter(5);
    s.rekeyAfter(5);
    await bothWays(c, s, 1024 * 1024);
    c.socket.destroy();
  });

  it('ends one direction with close_notify and FIN; the other goes on', async () => {
    const { c, s } = await sealedPair();
    const atServer = collect(s);
    const atClient = collect(c);
    c.write(Buffer.from('last words'));
    c.end();
    await once(s.socket, 'end');
    assert.equal(atServer.bytes().toString(), 'last words');
    s.write(Buffer.from('still heard'));
    assert.equal((await atClient.until(11)).toString(), 'still heard');
    s.end();
    await once(c.socket, 'end');
    c.socket.destroy();
  });

  it('closes the session when a record fails authentication', async () => {
    const { c, s } = await sealedPair();
    const gone = new Promise<Error | undefined>((resolve) => s.socket.once('error', resolve).once('close', () => resolve(undefined)));
    collect(s);
    collect(c);
    // A record with a well-formed header and a body no key made.
    const forged = Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), randomBytes(0x40)]);
    c.socket.write(forged);
    const err = (await gone) as (Error & { code?: string }) | undefined;
    assert.equal(err?.code, 'MESH_TLS_RECORD');
    assert.match(err!.message, /bad_record_mac/);
    // The client sees its session end (a FIN, or a reset if our forged bytes were still unread).
    await new Promise((resolve) => c.socket.once('end', resolve).once('close', resolve));
  });

  it('interoperates with OpenSSL’s record layer: a sealed client against a server that keeps Node’s TLS', async () => {
    const echoing = tls.createServer({
      cert: serverCreds.chainPem, key: serverCreds.keyPem, ca: ca.anchor.certPem, requestCert: true,
      ALPNProtocols: [SESSION_ALPN], minVersion: 'TLSv1.3',
    }, (ts) => {
      track(ts).on('error', () => {});
      ts.on('data', (d: Buffer) => ts.write(d));
    });
    const port = await listen(echoing);
    const cs = track(await client.connect({ address: '127.0.0.1', port, family: 4 }, SERVER, H2_HEADER, TIMEOUT_MS, true)).on('error', () => {});
    const c = sealedOf(cs);
    assert.ok(c !== undefined, 'the client sealed its side');
    const back = collect(c);
    const size = 2 * 1024 * 1024;
    const sent = await pour(c, size);
    // The echo starts with the header the client wrote first.
    const got = await back.until(H2_HEADER.length + size);
    assert.equal(sha(got.subarray(H2_HEADER.length)), sha(sent));
    assert.deepEqual(got.subarray(0, H2_HEADER.length), H2_HEADER);
    cs.destroy();
  });

  it('interoperates with OpenSSL’s record layer: a plain TLS client against a sealed server', async () => {
    const ts = track(tls.connect({
      host: '127.0.0.1', port: inbound.port, servername: SERVER, ca: ca.anchor.certPem,
      cert: clientCreds.chainPem, key: clientCreds.keyPem, ALPNProtocols: [SESSION_ALPN], minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    })).on('error', () => {});
    await once(ts, 'secureConnect');
    assert.equal(ts.alpnProtocol, SESSION_ALPN);
    // A client on OpenSSL's own order (AES-256-GCM first) gets the mesh server's choice.
    assert.equal(ts.getCipher().standardName, 'TLS_AES_128_GCM_SHA256');
    ts.write(H2_HEADER);
    const t = await inbound.next();
    assert.equal(t.kind, 'secured');
    if (t.kind !== 'secured') return;
    t.socket.on('error', () => {});
    const s = sealedOf(t.socket)!;
    assert.ok(s !== undefined, 'the server sealed its side');
    assert.equal((await readHeader(t.socket, TIMEOUT_MS)).kind, 'header');
    t.socket.resume();
    const atServer = collect(s);
    const parts: Buffer[] = [];
    ts.on('data', (d: Buffer) => parts.push(d));
    const size = 2 * 1024 * 1024;
    const up = randomBytes(size);
    ts.write(up);
    const down = await pour(s, size);
    assert.equal(sha(await atServer.until(size)), sha(up));
    while (parts.reduce((n, p) => n + p.length, 0) < size) await once(ts, 'data');
    assert.equal(sha(Buffer.concat(parts)), sha(down));
    ts.destroy();
  });

  it('stays on Node’s TLS with a server that only speaks the older ALPN, and for per-connection mTLS', async () => {
    const older = tls.createServer({
      cert: serverCreds.chainPem, key: serverCreds.keyPem, ca: ca.anchor.certPem, requestCert: true,
      ALPNProtocols: [TRANSPORT_ALPN], minVersion: 'TLSv1.3',
    }, (ts) => track(ts).on('error', () => {}));
    const port = await listen(older);
    const session = track(await client.connect({ address: '127.0.0.1', port, family: 4 }, SERVER, H2_HEADER, TIMEOUT_MS, true)).on('error', () => {});
    assert.ok(session instanceof tls.TLSSocket);
    assert.equal(sealedOf(session), undefined);
    const opaque = encodeHeader({ protocol: 'opaque', port: 5432 });
    const [cs, t] = await Promise.all([client.connect(inbound.target, SERVER, opaque, TIMEOUT_MS), inbound.next()]);
    track(cs).on('error', () => {});
    assert.ok(cs instanceof tls.TLSSocket, 'per-connection mTLS is not sealed');
    assert.equal((cs as TLSSocket).alpnProtocol, TRANSPORT_ALPN);
    // Between proxies AES-128-GCM is preferred (the server's order decides). A server on OpenSSL's
    // own order picks AES-256-GCM, and such a session seals too (the interop test above).
    assert.equal((cs as TLSSocket).getCipher().standardName, 'TLS_AES_128_GCM_SHA256');
    assert.equal((session as TLSSocket).getCipher().standardName, 'TLS_AES_256_GCM_SHA384');
    assert.ok(t.kind === 'secured' && t.socket instanceof tls.TLSSocket && sealedOf(t.socket as Socket) === undefined);
    session.destroy();
    cs.destroy();
  });
});
