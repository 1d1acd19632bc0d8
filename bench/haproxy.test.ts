import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { haproxyConfig, type HaproxyHop } from './haproxy.js';

const SERVER = 'server.bench.serviceaccount.identity.cluster.local';
const hops = {
  h1: { bind: '198.18.0.3:10100', to: '127.0.0.1:8080' },
  h2: { bind: '198.18.0.3:10101', to: '127.0.0.1:8081' },
};
const toPeer = {
  h1: { bind: '127.0.0.1:10100', to: '198.18.0.3:10100' },
  h2: { bind: '127.0.0.1:10101', to: '198.18.0.3:10101' },
};
const serverTls = { side: 'server', crt: '/t/server.pem', caFile: '/t/anchor.crt' } as const;
const clientTls = { side: 'client', crt: '/t/client.pem', caFile: '/t/anchor.crt', serverName: SERVER, h1As: 'h2' } as const;

/** The config's lines that start with `keyword`, trimmed. */
const lines = (hop: HaproxyHop, keyword: string): string[] =>
  haproxyConfig(hop).split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`${keyword} `));

describe('haproxyConfig', () => {
  it('plaintext mode http: h2c with prior knowledge on the h2 hop only, no TLS anywhere', () => {
    const hop: HaproxyHop = { mode: 'http', between: 'plain', ...toPeer };
    assert.deepEqual(lines(hop, 'bind'), ['bind 127.0.0.1:10100', 'bind 127.0.0.1:10101 proto h2']);
    assert.deepEqual(lines(hop, 'server'), ['server next 198.18.0.3:10100', 'server next 198.18.0.3:10101 proto h2']);
    assert.doesNotMatch(haproxyConfig(hop), /ssl|verify/);
    assert.match(haproxyConfig(hop), /http-reuse always/);
  });

  it('mode tcp with a bulk hop: a third frontend and backend, with the same TLS as the others', () => {
    const hop: HaproxyHop = { mode: 'tcp', between: 'mtls', tls: serverTls, ...hops, bulk: { bind: '198.18.0.3:10122', to: '127.0.0.1:6379' } };
    assert.deepEqual(lines(hop, 'bind').slice(2), ['bind 198.18.0.3:10122 ssl crt /t/server.pem ca-file /t/anchor.crt verify required']);
    assert.deepEqual(lines(hop, 'server').slice(2), ['server next 127.0.0.1:6379']);
    assert.deepEqual(lines(hop, 'frontend'), ['frontend h1', 'frontend h2', 'frontend bulk']);
    // mode http parses: no bulk hop there.
    assert.deepEqual(lines({ ...hop, mode: 'http' }, 'frontend'), ['frontend h1', 'frontend h2']);
  });

  it('plaintext mode tcp names no protocol and shares no connections', () => {
    const hop: HaproxyHop = { mode: 'tcp', between: 'plain', ...toPeer };
    assert.deepEqual(lines(hop, 'server'), ['server next 198.18.0.3:10100', 'server next 198.18.0.3:10101']);
    assert.doesNotMatch(haproxyConfig(hop), /proto h2|http-reuse/);
  });

  it('mTLS server side: binds require a client certificate from the anchor; ALPN offers h2 (and HTTP/1.1 on the h1 hop)', () => {
    const hop: HaproxyHop = { mode: 'http', between: 'mtls', tls: serverTls, ...hops };
    assert.deepEqual(lines(hop, 'bind'), [
      'bind 198.18.0.3:10100 ssl crt /t/server.pem ca-file /t/anchor.crt verify required alpn h2,http/1.1',
      'bind 198.18.0.3:10101 ssl crt /t/server.pem ca-file /t/anchor.crt verify required alpn h2',
    ]);
    // Towards nginx nothing changes: plaintext, h2c on the h2 hop.
    assert.deepEqual(lines(hop, 'server'), ['server next 127.0.0.1:8080', 'server next 127.0.0.1:8081 proto h2']);
  });

  it('mTLS client side: server lines present the leaf, verify the peer against the anchor and its identity as SNI', () => {
    const hop: HaproxyHop = { mode: 'http', between: 'mtls', tls: clientTls, ...toPeer };
    const tls = `ssl crt /t/client.pem ca-file /t/anchor.crt verify required sni str(${SERVER})`;
    assert.deepEqual(lines(hop, 'server'), [`server next 198.18.0.3:10100 ${tls} alpn h2`, `server next 198.18.0.3:10101 ${tls} alpn h2`]);
    // The client-facing side stays as a local sidecar's: plaintext on loopback.
    assert.deepEqual(lines(hop, 'bind'), ['bind 127.0.0.1:10100', 'bind 127.0.0.1:10101 proto h2']);
  });

  it('mTLS client side can keep HTTP/1.1 on the h1 hop', () => {
    const hop: HaproxyHop = { mode: 'http', between: 'mtls', tls: { ...clientTls, h1As: 'http/1.1' }, ...toPeer };
    assert.match(lines(hop, 'server')[0]!, / alpn http\/1\.1$/);
    assert.match(lines(hop, 'server')[1]!, / alpn h2$/);
  });

  it('mTLS in mode tcp: the same certificates and checks, no ALPN', () => {
    const client: HaproxyHop = { mode: 'tcp', between: 'mtls', tls: clientTls, ...toPeer };
    const server: HaproxyHop = { mode: 'tcp', between: 'mtls', tls: serverTls, ...hops };
    assert.deepEqual(lines(client, 'server'), [
      `server next 198.18.0.3:10100 ssl crt /t/client.pem ca-file /t/anchor.crt verify required sni str(${SERVER})`,
      `server next 198.18.0.3:10101 ssl crt /t/client.pem ca-file /t/anchor.crt verify required sni str(${SERVER})`,
    ]);
    assert.deepEqual(lines(server, 'bind'), [
      'bind 198.18.0.3:10100 ssl crt /t/server.pem ca-file /t/anchor.crt verify required',
      'bind 198.18.0.3:10101 ssl crt /t/server.pem ca-file /t/anchor.crt verify required',
    ]);
  });
});
