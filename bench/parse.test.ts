import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { h2loadLogLatencies, parseDuration, parseH2load, parseWrk, ParseError } from './parse.js';

// Captured from wrk 4.1.0 (Debian) against the bench's nginx.
const WRK_OK = `Running 1s test @ http://198.18.0.3:8080/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   317.71us    1.00ms  13.79ms   94.17%
    Req/Sec    72.62k    12.15k   88.83k    70.00%
  Latency Distribution
     50%   90.00us
     75%  111.00us
     90%  406.00us
     99%    4.12ms
  72131 requests in 1.00s, 11.21MB read
Requests/sec:  72092.57
Transfer/sec:     11.21MB
`;

// wrk's error lines, as its summary prints them when there are any.
const WRK_ERRORS = WRK_OK.replace(
  '  72131 requests in 1.00s, 11.21MB read\n',
  '  72131 requests in 1.00s, 11.21MB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 12\n',
);

// Captured from h2load (nghttp2 1.52.0), -c2 -m2 -D1.
const H2LOAD_OK = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 1.00s, 33153.00 req/s, 2.59MB/s
requests: 33153 total, 33157 started, 33153 done, 33153 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 33153 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.59MB (2718644) total, 1.55MB (1624497) headers (space savings 50.51%), 485.64KB (497295) data
                     min         max         mean         sd        +/- sd
time for request:       24us      5.06ms       106us       270us    98.78%
`;

describe('parseWrk', () => {
  it('reads throughput, percentiles and maximum in milliseconds', () => {
    const r = parseWrk(WRK_OK);
    assert.equal(r.requests, 72131);
    assert.equal(r.rps, 72092.57);
    assert.deepEqual(r.latencyMs, { p50: 0.09, p90: 0.406, p99: 4.12, max: 13.79 });
    assert.equal(r.errors, 0);
    assert.equal(r.non2xx, 0);
  });

  it('counts socket errors and non-2xx responses', () => {
    const r = parseWrk(WRK_ERRORS);
    assert.equal(r.errors, 6);
    assert.equal(r.non2xx, 12);
    assert.match(r.errorDetail, /timeout 3/);
  });

  it('refuses output without a summary (wrk could not connect)', () => {
    assert.throws(() => parseWrk('unable to connect to 198.18.0.3:9999 Connection refused\n'), ParseError);
  });
});

describe('parseH2load', () => {
  const lat = { p50: 0.1, p90: 0.2, p99: 0.3, max: 5 };

  it('reads throughput and takes percentiles from the log', () => {
    const r = parseH2load(H2LOAD_OK, lat);
    assert.equal(r.requests, 33153);
    assert.equal(r.rps, 33153);
    assert.deepEqual(r.latencyMs, lat);
    assert.equal(r.errors, 0);
    assert.equal(r.non2xx, 0);
  });

  it('separates 4xx/5xx responses from requests lost to the network', () => {
    const out = H2LOAD_OK.replace('0 failed, 0 errored', '7 failed, 2 errored').replace('0 4xx, 0 5xx', '4 4xx, 1 5xx');
    const r = parseH2load(out, lat);
    assert.equal(r.non2xx, 5);
    assert.equal(r.errors, 2);
  });
});

describe('h2loadLogLatencies', () => {
  it('reads the third column (µs) as milliseconds and skips blank lines', () => {
    const ms = h2loadLogLatencies('1795306184296455\t200\t1166\n1795306184296456\t200\t1211\n\n');
    assert.deepEqual([...ms], [1.166, 1.211]);
  });
});

describe('parseDuration', () => {
  it('knows wrk units', () => {
    assert.equal(parseDuration('657.03us'), 0.65703);
    assert.equal(parseDuration('2.00s'), 2000);
    assert.equal(parseDuration('1.50m'), 90_000);
    assert.throws(() => parseDuration('12'), ParseError);
  });
});
