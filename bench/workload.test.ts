import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { h2loadArgs, wrkArgs } from './load.js';
import { nginxConfig } from './nginx.js';
import { headBytes, REALISTIC_BODY_BYTES, REALISTIC_HEADERS, REALISTIC_PATH, realisticBody, WORKLOADS, workloadList } from './workload.js';

const value = (name: string): string => REALISTIC_HEADERS.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1] ?? '';

describe('the realistic workload', () => {
  it('sends about a dozen headers totalling ~1 KB', () => {
    assert.ok(REALISTIC_HEADERS.length >= 10 && REALISTIC_HEADERS.length <= 14, `${REALISTIC_HEADERS.length} headers`);
    const bytes = headBytes(REALISTIC_HEADERS);
    assert.ok(bytes >= 950 && bytes <= 1150, `${bytes} bytes of header lines`);
    const names = REALISTIC_HEADERS.map(([n]) => n.toLowerCase());
    assert.equal(new Set(names).size, names.length, 'no name twice (wrk keeps one value per name)');
    for (const want of ['user-agent', 'accept', 'accept-language', 'accept-encoding', 'cookie', 'authorization', 'x-request-id', 'traceparent', 'referer', 'cache-control']) {
      assert.ok(names.includes(want), want);
    }
  });

  it('carries a browser User-Agent, a ~300-byte cookie of several pairs and a JWT-shaped bearer token of ~400 chars', () => {
    assert.match(value('User-Agent'), /^Mozilla\/5\.0 \(.+\) AppleWebKit\/.+ Chrome\/[\d.]+ Safari\/[\d.]+$/);
    const cookie = value('Cookie');
    assert.ok(cookie.length >= 250 && cookie.length <= 350, `cookie ${cookie.length} bytes`);
    assert.ok(cookie.split('; ').length >= 5);
    for (const pair of cookie.split('; ')) assert.match(pair, /^[\w-]+=[^;\s]+$/);
    const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(value('Authorization'));
    assert.ok(m, value('Authorization'));
    const token = value('Authorization').slice('Bearer '.length);
    assert.ok(token.length >= 350 && token.length <= 450, `token ${token.length} chars`);
    assert.equal(JSON.parse(Buffer.from(m[1]!, 'base64url').toString()).typ, 'JWT');
    assert.ok(JSON.parse(Buffer.from(m[2]!, 'base64url').toString()).sub);
    assert.match(value('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it('is valid HTTP: token names, values without CR, LF or NUL', () => {
    for (const [name, v] of REALISTIC_HEADERS) {
      assert.match(name, /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
      assert.doesNotMatch(v, /[\r\n\0]/);
      assert.equal(v, v.trim());
    }
  });

  it('is answered with a 2 KB JSON body from a file nginx serves', () => {
    const body = realisticBody();
    assert.equal(Buffer.byteLength(body), REALISTIC_BODY_BYTES);
    assert.ok(Array.isArray(JSON.parse(body).items));
    assert.equal(WORKLOADS.realistic.bodyBytes, 2048);
    const conf = nginxConfig('/tmp/x');
    assert.ok(conf.includes(`location = ${REALISTIC_PATH} { default_type application/json; root /tmp/x/www; }`));
    // Both servers (HTTP/1.1 and h2c) serve it, and the tiny body stays at /.
    assert.equal(conf.split(`location = ${REALISTIC_PATH}`).length - 1, 2);
    assert.equal(conf.split('location / { default_type text/plain; return 200 ').length - 1, 2);
  });
});

describe('load generator arguments', () => {
  const target = { host: '198.18.0.3', port: 8080 };

  it('tiny: wrk and h2load as before, GET /', () => {
    assert.deepEqual(wrkArgs(target, { connections: 50, durationS: 10 }), ['-t1', '-c50', '-d10s', '--timeout', '2s', '--latency', 'http://198.18.0.3:8080/']);
    assert.deepEqual(h2loadArgs(target, { clients: 10, streams: 10, durationS: 10 }), ['-t1', '-c10', '-m10', '-D10', 'http://198.18.0.3:8080/']);
  });

  it('realistic: one -H "Name: value" per header (wrk needs ": "), lower-case names for h2load, the file path', () => {
    const w = WORKLOADS.realistic;
    const wa = wrkArgs(target, { connections: 50, durationS: 10, workload: w });
    assert.equal(wa.filter((a) => a === '-H').length, REALISTIC_HEADERS.length);
    assert.ok(wa.includes(`Authorization: ${value('Authorization')}`));
    for (let i = 0; i < wa.length; i++) if (wa[i] === '-H') assert.match(wa[i + 1]!, /^[\w-]+: \S/);
    assert.equal(wa.at(-1), `http://198.18.0.3:8080${REALISTIC_PATH}`);
    const ha = h2loadArgs({ host: 'fd00::3', port: 8081 }, { clients: 10, streams: 10, durationS: 10, workload: w });
    assert.equal(ha.filter((a) => a === '-H').length, REALISTIC_HEADERS.length);
    assert.ok(ha.includes(`cookie: ${value('Cookie')}`));
    for (let i = 0; i < ha.length; i++) if (ha[i] === '-H') assert.equal(ha[i + 1]!.split(':')[0], ha[i + 1]!.split(':')[0]!.toLowerCase());
    assert.equal(ha.at(-1), `http://[fd00::3]:8081${REALISTIC_PATH}`);
  });
});

describe('--workload', () => {
  it('takes tiny, realistic or both (tiny first)', () => {
    assert.deepEqual(workloadList('both'), ['tiny', 'realistic']);
    assert.deepEqual(workloadList('tiny'), ['tiny']);
    assert.deepEqual(workloadList(' realistic '), ['realistic']);
    assert.throws(() => workloadList('huge'), /unknown workload "huge"/);
  });
});
