import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { classify, parseClientHello } from './index.js';
import { alpnExt, buildHello, captureClientHello, extension, helloLayout, reframe, serverNameExt, vec16 } from './testkit.js';

const WEB = { kind: 'client-hello', sni: 'web.default.svc', alpn: ['h2', 'http/1.1'] };
const NOT_TLS = { kind: 'not-tls' };
const NEED_MORE = { kind: 'need-more' };

/** A copy of `buf` with `edit` applied. */
const mutate = (buf: Buffer, edit: (b: Buffer) => void): Buffer => {
  const copy = Buffer.from(buf);
  edit(copy);
  return copy;
};

describe('ClientHello', () => {
  let web: Buffer; // SNI and ALPN
  let bare: Buffer; // an IP address: Node sends no SNI (RFC 6066 allows only DNS names)
  before(async () => {
    web = await captureClientHello({ servername: 'web.default.svc', ALPNProtocols: ['h2', 'http/1.1'] });
    bare = await captureClientHello({});
  });

  it('reads SNI and ALPN from a real ClientHello', () => {
    assert.deepEqual(parseClientHello(web), WEB);
    assert.deepEqual(classify(web, 8192), { kind: 'tls', sni: 'web.default.svc', alpn: ['h2', 'http/1.1'] });
  });

  it('reads a hello without SNI or ALPN', () => {
    assert.deepEqual(parseClientHello(bare), { kind: 'client-hello', alpn: [] });
    assert.deepEqual(classify(bare, 8192), { kind: 'tls', sni: undefined, alpn: [] });
  });

  it('reassembles a hello split into two records at every offset', () => {
    const payload = web.readUInt16BE(3);
    for (let cut = 1; cut < payload; cut++) assert.deepEqual(parseClientHello(reframe(web, [cut])), WEB, `cut at ${cut}`);
  });

  it('reassembles a hello cut into many small records, handshake header included', () => {
    const payload = web.readUInt16BE(3);
    const cuts = [1, 2, 3];
    for (let cut = 7; cut < payload; cut += 7) cuts.push(cut);
    assert.deepEqual(parseClientHello(reframe(web, cuts)), WEB);
  });

  it('needs more at every truncation, in one record or two', () => {
    for (const hello of [web, bare, reframe(web, [2]), reframe(web, [100])]) {
      for (let n = 0; n < hello.length; n++) {
        assert.deepEqual(parseClientHello(hello.subarray(0, n)), NEED_MORE, `${n} of ${hello.length} bytes`);
        assert.deepEqual(classify(hello.subarray(0, n), 8192), NEED_MORE);
      }
    }
  });

  it('ignores what follows the hello (early data, the next records)', () => {
    const after = Buffer.concat([web, Buffer.from([0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5])]);
    assert.deepEqual(parseClientHello(after), WEB);
  });

  it('rejects corrupted lengths and fields as not TLS', () => {
    const at = helloLayout(web);
    const sni = at.ext.get(0)!; // offset of the server_name extension's length
    const alpn = at.ext.get(16)!;
    const cases: Array<[string, (b: Buffer) => void]> = [
      ['record type alert', (b) => (b[0] = 21)],
      ['record version 2.0', (b) => (b[1] = 2)],
      ['record length 0', (b) => b.writeUInt16BE(0, 3)],
      ['record length over 2^14', (b) => b.writeUInt16BE(0x4001, 3)],
      ['handshake type ServerHello', (b) => (b[5] = 2)],
      ['handshake body shorter than any hello', (b) => b.writeUIntBE(40, 6, 3)],
      ['handshake body one byte short', (b) => b.writeUIntBE(b.readUIntBE(6, 3) - 1, 6, 3)],
      ['legacy_version 2.x', (b) => (b[9] = 2)],
      ['session id longer than 32', (b) => (b[at.session] = 33)],
      ['cipher suites of odd length', (b) => b.writeUInt16BE(b.readUInt16BE(at.suites) + 1, at.suites)],
      ['cipher suites empty', (b) => b.writeUInt16BE(0, at.suites)],
      ['cipher suites past the end', (b) => b.writeUInt16BE(0xfffe, at.suites)],
      ['no compression method', (b) => (b[at.compression] = 0)],
      ['extensions one byte long', (b) => b.writeUInt16BE(b.readUInt16BE(at.extensions) + 1, at.extensions)],
      ['extensions one byte short', (b) => b.writeUInt16BE(b.readUInt16BE(at.extensions) - 1, at.extensions)],
      ['server_name data past its block', (b) => b.writeUInt16BE(b.readUInt16BE(sni) + 1, sni)],
      ['server_name list length off by one', (b) => b.writeUInt16BE(b.readUInt16BE(sni + 2) - 1, sni + 2)],
      ['host_name length past the list', (b) => b.writeUInt16BE(b.readUInt16BE(sni + 5) + 1, sni + 5)],
      ['host_name empty', (b) => b.writeUInt16BE(0, sni + 5)],
      ['ALPN list length off by one', (b) => b.writeUInt16BE(b.readUInt16BE(alpn + 2) + 1, alpn + 2)],
      ['ALPN name empty', (b) => (b[alpn + 4] = 0)],
      ['ALPN name past the list', (b) => (b[alpn + 4] = 200)],
    ];
    for (const [name, edit] of cases) {
      const bad = mutate(web, edit);
      assert.deepEqual(parseClientHello(bad), NOT_TLS, name);
      assert.deepEqual(classify(bad, 8192), { kind: 'opaque', reason: 'unknown-protocol' }, name);
    }
  });

  it('decides not-TLS on the first wrong byte, before the hello is complete', () => {
    assert.deepEqual(parseClientHello(Buffer.from([22, 2])), NOT_TLS);
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), NOT_TLS);
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 1, 0, 2])), NOT_TLS);
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 1, 0, 1, 0, 0, 1])), NOT_TLS); // body of 1 byte
  });

  it('needs more when a length promises bytes that have not come', () => {
    const longer = mutate(web, (b) => {
      b.writeUInt16BE(b.readUInt16BE(3) + 1, 3);
      b.writeUIntBE(b.readUIntBE(6, 3) + 1, 6, 3);
    });
    assert.deepEqual(parseClientHello(longer), NEED_MORE);
  });
});

describe('ClientHello extensions', () => {
  it('accepts a hello without an extensions block (TLS 1.2 and earlier)', () => {
    assert.deepEqual(parseClientHello(buildHello()), { kind: 'client-hello', alpn: [] });
    assert.deepEqual(parseClientHello(buildHello([])), { kind: 'client-hello', alpn: [] });
  });

  it('lower-cases the host name and skips name types other than host_name', () => {
    assert.deepEqual(parseClientHello(buildHello([serverNameExt([0, 'Web.Default.SVC'])])), { kind: 'client-hello', sni: 'web.default.svc', alpn: [] });
    assert.deepEqual(parseClientHello(buildHello([serverNameExt([7, 'x'], [0, 'a.b'])])), { kind: 'client-hello', sni: 'a.b', alpn: [] });
    assert.deepEqual(parseClientHello(buildHello([serverNameExt([7, 'x'])])), { kind: 'client-hello', alpn: [] });
  });

  it('keeps the ALPN order and skips unknown extensions', () => {
    const hello = buildHello([extension(0xfe0d, Buffer.alloc(9)), alpnExt('http/1.1', 'h2'), extension(43, Buffer.from([2, 3, 4]))]);
    assert.deepEqual(parseClientHello(hello), { kind: 'client-hello', alpn: ['http/1.1', 'h2'] });
  });

  it('rejects ambiguous names: duplicates, two host_names, control or non-ASCII bytes', () => {
    for (const [name, exts] of [
      ['two server_name extensions', [serverNameExt([0, 'a']), serverNameExt([0, 'b'])]],
      ['two ALPN extensions', [alpnExt('h2'), alpnExt('h2')]],
      ['two host_names', [serverNameExt([0, 'a'], [0, 'b'])]],
      ['NUL in host_name', [serverNameExt([0, Buffer.from('good.svc\0evil.svc')])]],
      ['space in host_name', [serverNameExt([0, 'a b'])]],
      ['non-ASCII host_name', [serverNameExt([0, Buffer.from('caf\xe9', 'latin1')])]],
      ['empty server_name list', [extension(0, vec16(Buffer.alloc(0)))]],
      ['empty server_name data', [extension(0, Buffer.alloc(0))]],
      ['empty ALPN list', [extension(16, vec16(Buffer.alloc(0)))]],
    ] as Array<[string, Buffer[]]>) {
      assert.deepEqual(parseClientHello(buildHello(exts)), NOT_TLS, name);
    }
  });
});
