import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, type Verdict } from './index.js';
import { captureClientHello } from './testkit.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const UNKNOWN = { kind: 'opaque', reason: 'unknown-protocol' };
const TOO_LARGE = { kind: 'opaque', reason: 'too-large' };
const NEED_MORE = { kind: 'need-more' };

/** The shortest prefix on which classify decides, and the decision. */
function decision(input: Buffer, maxBytes = 8192): { at: number; verdict: Verdict } {
  for (let n = 0; n <= input.length; n++) {
    const verdict = classify(input.subarray(0, n), maxBytes);
    if (verdict.kind !== 'need-more') return { at: n, verdict };
  }
  return { at: -1, verdict: NEED_MORE as Verdict };
}

describe('classify', () => {
  it('needs more on zero bytes', () => {
    assert.deepEqual(classify(Buffer.alloc(0), 8192), NEED_MORE);
  });

  it('checks the h2 preface before HTTP/1: "PRI * HTTP/2.0\\r\\n" alone is not yet HTTP/1', () => {
    assert.deepEqual(classify(bytes('PRI * HTTP/2.0\r\n'), 8192), NEED_MORE);
    assert.deepEqual(decision(bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), { at: 24, verdict: { kind: 'h2' } });
    assert.deepEqual(classify(bytes('PRI * HTTP/1.1\r\n'), 8192), { kind: 'http1' });
    assert.deepEqual(decision(bytes('PRI * HTTP/2.0\r\n\r\nXX')), { at: 19, verdict: UNKNOWN });
  });

  it('decides HTTP/1 at the end of the request line', () => {
    assert.deepEqual(decision(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), { at: 16, verdict: { kind: 'http1' } });
    assert.deepEqual(decision(bytes('POST /x?y=1 HTTP/1.0\r\n')), { at: 22, verdict: { kind: 'http1' } });
    assert.deepEqual(classify(bytes('GET / HTTP/2.0\r\n'), 8192), UNKNOWN);
    assert.deepEqual(classify(bytes('GET /  HTTP/1.1'), 8192), UNKNOWN);
  });

  // Client-first protocols that are not ours must be let through within their first
  // bytes, not after maxBytes or the timeout.
  const others: Array<[string, Buffer, number]> = [
    ['PostgreSQL StartupMessage', Buffer.from('0000002b000300007573657200706f73746772657300646174616261736500646200000000', 'hex'), 1],
    ['PostgreSQL SSLRequest', Buffer.from('0000000804d2162f', 'hex'), 1],
    ['MySQL-like greeting', bytes('\x4a\x00\x00\x00\x0a5.7.44\x00\x08\x00\x00\x00'), 2],
    ['Redis RESP', bytes('*1\r\n$4\r\nPING\r\n'), 3],
    ['Redis inline', bytes('PING\r\n'), 5],
    ['memcached', bytes('get foo\r\n'), 8],
    ['SSH banner (client side)', bytes('SSH-2.0-OpenSSH_9.6\r\n'), 20],
    ['SSLv2-style hello', Buffer.from('802b0100020012', 'hex'), 1],
    ['Kafka request', Buffer.from('0000001f00120003', 'hex'), 1],
    ['binary garbage', Buffer.from('e3f1a07b2c9d', 'hex'), 1],
  ];
  for (const [name, input, at] of others) {
    it(`lets ${name} through after ${at} byte(s)`, () => {
      assert.deepEqual(decision(input), { at, verdict: UNKNOWN });
    });
  }

  it('bounds need-more by maxBytes', () => {
    const long = bytes(`GET /${'a'.repeat(10_000)}`);
    assert.deepEqual(classify(long.subarray(0, 99), 100), NEED_MORE);
    assert.deepEqual(classify(long.subarray(0, 100), 100), TOO_LARGE);
    assert.deepEqual(classify(long, 100), TOO_LARGE);
    assert.deepEqual(classify(long, 8192), TOO_LARGE);
  });

  it('treats a maxBytes that could never be reached (NaN, 0, fractional) as a whole number of at least 1', () => {
    const long = bytes(`GET /${'a'.repeat(200)}`);
    assert.deepEqual(classify(long, 100.5), TOO_LARGE);
    assert.deepEqual(classify(long.subarray(0, 100), 100.5), TOO_LARGE);
    assert.deepEqual(classify(long, Number.NaN), TOO_LARGE);
    assert.deepEqual(classify(long, 0), TOO_LARGE);
    assert.deepEqual(classify(bytes('\0'), 0), UNKNOWN); // the one byte allowed still decides
    assert.deepEqual(classify(long, Infinity), NEED_MORE);
  });

  it('judges only the first maxBytes bytes, so chunking cannot change a verdict', async () => {
    const hello = await captureClientHello({ servername: 'a.svc' });
    assert.deepEqual(classify(hello, hello.length), { kind: 'tls', sni: 'a.svc', alpn: [] });
    assert.deepEqual(classify(hello, hello.length - 1), TOO_LARGE);
    assert.deepEqual(classify(Buffer.concat([hello.subarray(0, 50), Buffer.alloc(10_000)]), 100), TOO_LARGE);
    assert.deepEqual(classify(bytes('GET / HTTP/1.1\r\n'), 16), { kind: 'http1' });
    assert.deepEqual(classify(bytes('GET / HTTP/1.1\r\n'), 15), TOO_LARGE);
  });

  it('answers the common verdicts without allocating a new object', () => {
    const a = bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const b = bytes('PUT /y HTTP/1.0\r\n');
    assert.equal(classify(a, 8192), classify(b, 8192));
    assert.equal(classify(bytes('\0'), 8192), classify(bytes('\x01'), 8192));
    assert.equal(classify(bytes('GE'), 8192), classify(bytes('PO'), 8192));
    assert.throws(() => ((classify(a, 8192) as { kind: string }).kind = 'h2'), TypeError); // frozen: shared safely
  });
});

describe('classify cost', () => {
  /** Best-of-5 nanoseconds per call. */
  function nsPerCall(input: Buffer, maxBytes: number, calls: number): number {
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) classify(input, maxBytes);
      best = Math.min(best, Number(process.hrtime.bigint() - start) / calls);
    }
    return best;
  }

  it('classifies a typical request in well under a microsecond', (t) => {
    const ns = nsPerCall(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 8192, 100_000);
    t.diagnostic(`GET / HTTP/1.1: ${ns.toFixed(0)} ns per classify`);
    assert.ok(ns < 2_000, `${ns} ns per call`);
  });

  it('is linear in the bytes it judges', (t) => {
    const small = nsPerCall(bytes(`GET /${'a'.repeat(4_000)}`), 1 << 20, 300);
    const large = nsPerCall(bytes(`GET /${'a'.repeat(64_000)}`), 1 << 20, 300);
    t.diagnostic(`4 KB: ${small.toFixed(0)} ns, 64 KB: ${large.toFixed(0)} ns (x${(large / small).toFixed(1)} for x16 bytes)`);
    assert.ok(large / small < 40, `x${large / small} for 16x the bytes`); // quadratic would be ~x256
  });

  it('keeps the worst case of detection (maxBytes arriving one byte at a time) cheap', (t) => {
    const input = bytes(`GET /${'a'.repeat(8192)}`);
    const start = process.hrtime.bigint();
    for (let n = 1; n <= 8192; n++) classify(input.subarray(0, n), 8192);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.diagnostic(`8192 one-byte chunks re-classified: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1_000);
  });
});
