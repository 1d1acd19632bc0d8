import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import tls from 'node:tls';
import { createTrustAnchor, issueServingCert, loadSigner } from '../ca/index.js';
import { NativeError, nativeAvailable, noSessionTickets, originalDestination, setTransparent } from './index.js';

/** How many TLS 1.3 session tickets a client gets from `server` before its first reply. */
async function ticketsFrom(server: tls.Server, ca: string): Promise<number> {
  const port = (server.address() as { port: number }).port;
  const c = tls.connect({ port, host: '127.0.0.1', servername: 'echo.test', ca, minVersion: 'TLSv1.3' });
  let tickets = 0;
  c.on('session', () => tickets++);
  await once(c, 'secureConnect');
  c.write('ping');
  // TLS 1.3 servers send their tickets right after the handshake, ahead of any data of theirs.
  await once(c, 'data');
  c.destroy();
  return tickets;
}

async function loopbackPair(host: string): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection');
  const client = connect(port, host);
  const [sock] = (await accepted) as [Socket];
  return { server, client, accepted: sock };
}

describe('native addon', () => {
  const cleanup: Array<() => void> = [];
  after(() => cleanup.forEach((f) => f()));

  it('loads', () => {
    assert.equal(nativeAvailable(), true);
  });

  for (const host of ['127.0.0.1', '::1']) {
    it(`says plainly when a ${host} connection was not redirected`, async () => {
      const { server, client, accepted } = await loopbackPair(host);
      cleanup.push(() => (client.destroy(), accepted.destroy(), server.close()));
      assert.throws(
        () => originalDestination(accepted),
        (e: unknown) => e instanceof NativeError && e.code === 'MESH_NO_ORIGINAL_DST' && /not redirected/.test(e.message),
      );
    });
  }

  it('stops a server SecureContext from sending TLS 1.3 session tickets', async () => {
    const anchor = await createTrustAnchor();
    const cert = await issueServingCert({ issuer: await loadSigner(anchor), dnsNames: ['echo.test'], lifetimeMs: 3_600_000 });
    const serve = async (noTickets: boolean): Promise<number> => {
      const server = tls.createServer({ key: cert.keyPem, cert: cert.chainPem }, (s) => {
        s.on('error', () => {});
        s.on('data', (d) => s.write(d));
      });
      if (noTickets) assert.equal(noSessionTickets((server as unknown as { _sharedCreds: unknown })._sharedCreds), true);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        return await ticketsFrom(server, anchor.certPem);
      } finally {
        server.close();
      }
    };
    assert.ok((await serve(false)) > 0, 'by default the server sends tickets');
    assert.equal(await serve(true), 0);
    assert.equal(noSessionTickets({}), false, 'not a SecureContext: refused, nothing touched');
  });

  it('refuses a closed socket with MESH_BAD_SOCKET', async () => {
    const { server, client, accepted } = await loopbackPair('127.0.0.1');
    accepted.destroy();
    client.destroy();
    server.close();
    assert.throws(() => originalDestination(accepted), (e: unknown) => e instanceof NativeError && e.code === 'MESH_BAD_SOCKET');
  });

  it('makes a dual-stack listener transparent (as root), and says why when it cannot', async (t) => {
    const server = createServer();
    server.listen(0, '::');
    await once(server, 'listening');
    cleanup.push(() => server.close());
    if (process.getuid?.() === 0) {
      setTransparent(server);
    } else {
      t.diagnostic('not root: checking the refusal instead');
      assert.throws(() => setTransparent(server), (e: unknown) => e instanceof NativeError && e.code === 'MESH_PERMISSION_DENIED');
    }
  });
});

describe('native addon without privileges', () => {
  it('refuses IP_TRANSPARENT with MESH_PERMISSION_DENIED and a reason', { skip: process.getuid?.() !== 0 && 'needs root to drop to another uid' }, async () => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      import('${new URL('./index.js', import.meta.url).href}').then(async (m) => {
        const net = await import('node:net');
        const s = net.createServer().listen(0, '127.0.0.1', () => {
          try { m.setTransparent(s); console.log('set'); } catch (e) { console.log(e.code + ' ' + e.message); }
          s.close();
        });
      });`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^MESH_PERMISSION_DENIED .*CAP_NET_ADMIN/);
  });
});

describe('releasing node executable pages', () => {
  // In a child of its own: the pages dropped are this process's mappings of node itself, and what
  // must hold afterwards is everything that runs from them (code, the snapshot, ICU data, the
  // relocated tables). A copy-on-write page reverted to the file's bytes would show as a crash
  // or a wrong answer here.
  it('unmaps start-up pages, and node runs on from the page cache with the same answers', async () => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      const m = await import('${new URL('./index.js', import.meta.url).href}');
      const { createHash, generateKeyPairSync, sign, verify } = await import('node:crypto');
      const { gzipSync, gunzipSync } = await import('node:zlib');
      const { readFileSync } = await import('node:fs');
      const fileKb = () => Number(/RssFile:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
      const work = () => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const sig = sign('sha256', Buffer.from('mesh'), privateKey);
        return [
          createHash('sha256').update('abc').digest('hex'),
          gunzipSync(gzipSync('x'.repeat(100000))).length,
          verify('sha256', Buffer.from('mesh'), publicKey, sig),
          new Intl.DateTimeFormat('de-DE', { timeZone: 'UTC' }).format(new Date(0)),
          /\\p{Lu}+/u.exec('abcÄÖÜdef')[0],
          JSON.stringify({ a: [1, 2.5, 'é'] }),
        ];
      };
      const before = work();
      const fileBefore = fileKb();
      const released = m.releaseFilePages();
      const fileAfter = fileKb();
      const again = work();
      const second = m.releaseFilePages();
      console.log(JSON.stringify({ before, again, released, second, fileBefore, fileAfter }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { before: unknown[]; again: unknown[]; released: number; second: number; fileBefore: number; fileAfter: number };
    assert.deepEqual(out.again, out.before);
    assert.deepEqual(out.before.slice(0, 5), ['ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 100000, true, '1.1.1970', 'ÄÖÜ']);
    assert.ok(out.released > 10 * 1048576, `released ${out.released} bytes`);
    assert.ok(out.fileAfter < out.fileBefore - 10 * 1024, `RssFile ${out.fileBefore} -> ${out.fileAfter} kB`);
    // The work after the first release faulted some pages back: the second finds them resident again.
    assert.ok(out.second > 0 && out.second < out.released, `second release ${out.second} of ${out.released}`);
  });
});

describe('holding freed allocator pages', () => {
  // In children of their own: the allocator's settings are process-wide. 32 buffers of 1 MiB
  // (malloc'd outside the V8 heap) are written, then collected: glibc by default maps each and
  // unmaps it on free, so RSS falls at once; held, the memory stays with the allocator (no fault
  // and zeroing when the next buffers come) until the proxy trims it.
  const run = async (hold: boolean): Promise<{ held: boolean; filled: number; freed: number; trimmed: number }> => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      const m = await import('${new URL('./index.js', import.meta.url).href}');
      const held = ${hold} ? m.holdAllocatorPages() : false;
      const rss = () => process.memoryUsage.rss();
      let bufs = Array.from({ length: 32 }, () => Buffer.allocUnsafeSlow(1 << 20).fill(7));
      const filled = rss();
      bufs = null;
      for (let i = 0; i < 20 && process.memoryUsage().arrayBuffers > 1 << 20; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      const freed = rss();
      m.trimMemory();
      console.log(JSON.stringify({ held, filled, freed, trimmed: rss() }));`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--single-threaded-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { held: boolean; filled: number; freed: number; trimmed: number };
  };
  const MiB = 1048576;

  it('keeps freed memory until the proxy trims; glibc alone gives it back at once', async () => {
    const held = await run(true);
    assert.equal(held.held, true);
    assert.ok(held.freed > held.filled - 8 * MiB, `held: RSS ${held.filled / MiB | 0} -> ${held.freed / MiB | 0} MiB after the free`);
    assert.ok(held.trimmed < held.freed - 16 * MiB, `held: RSS ${held.freed / MiB | 0} -> ${held.trimmed / MiB | 0} MiB after the trim`);
    const plain = await run(false);
    assert.ok(plain.freed < plain.filled - 16 * MiB, `default: RSS ${plain.filled / MiB | 0} -> ${plain.freed / MiB | 0} MiB after the free`);
  });
});
