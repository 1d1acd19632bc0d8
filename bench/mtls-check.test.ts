import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inboundConnections, inboundTls, mtlsProblems } from './mtls-check.js';

const CLIENT = 'client.bench.serviceaccount.identity.cluster.local';
const SERVER = 'server.bench.serviceaccount.identity.cluster.local';

// Shaped like prom-client's text from the server-side proxy after a run.
const MTLS = `# HELP request_total Total count of HTTP requests.
# TYPE request_total counter
request_total{direction="inbound",target_addr="198.18.0.3:8080",tls="true",client_id="${CLIENT}",server_id="${SERVER}",authority="198.18.0.3:8080"} 812345
request_total{direction="inbound",target_addr="198.18.0.3:8081",tls="true",client_id="${CLIENT}",server_id="${SERVER}",authority="198.18.0.3:8081"} 604010
tcp_open_total{direction="inbound",target_addr="198.18.0.3:8080",tls="true",client_id="${CLIENT}"} 3
`;
const PLAIN = `request_total{direction="inbound",target_addr="198.18.0.3:8080",tls="no_identity",no_tls_reason="disabled",authority="198.18.0.3:8080"} 1000
request_total{direction="inbound",target_addr="198.18.0.3:8081",tls="no_identity",no_tls_reason="disabled",authority="198.18.0.3:8081"} 20
request_total{direction="outbound",target_addr="198.18.0.4:80",tls="no_identity",no_tls_reason="disabled",authority="x"} 7
`;

describe('inboundTls / mtlsProblems', () => {
  it('passes when every inbound request came over mTLS from the client identity', () => {
    const seen = inboundTls(MTLS, CLIENT);
    assert.equal(seen.mtls, 1_416_355);
    assert.equal(seen.other.size, 0);
    assert.deepEqual(mtlsProblems(seen, CLIENT), []);
  });

  it('says how the requests came when none were mTLS (the proxy ignored the meshed destinations)', () => {
    const seen = inboundTls(PLAIN, CLIENT);
    assert.equal(seen.mtls, 0);
    assert.deepEqual([...seen.other], [['tls="no_identity" no_tls_reason="disabled"', 1020]]);
    const [problem, ...rest] = mtlsProblems(seen, CLIENT);
    assert.equal(rest.length, 0);
    assert.match(problem!, /^not mTLS: .*counted 1020 with tls="no_identity" no_tls_reason="disabled"/);
  });

  it('counts mTLS from another identity as not what was asked for, and flags a mixed path', () => {
    const other = MTLS.replaceAll(CLIENT, 'web.emojivoto.serviceaccount.identity.cluster.local');
    assert.match(mtlsProblems(inboundTls(other, CLIENT), CLIENT)[0]!, /^not mTLS: .*client_id="web\.emojivoto/);
    assert.match(mtlsProblems(inboundTls(MTLS + PLAIN, CLIENT), CLIENT)[0]!, /^partly mTLS: .*1416355 inbound requests over mTLS.*1020 with/);
  });

  it('judges opaque connections to one port by tcp_open_total', () => {
    const opaque = `tcp_open_total{direction="inbound",target_addr="198.18.0.3:6379",tls="true",client_id="${CLIENT}"} 1
tcp_open_total{direction="inbound",target_addr="198.18.0.3:16379",tls="no_identity",no_tls_reason="disabled"} 4
`;
    assert.deepEqual(mtlsProblems(inboundConnections(MTLS + opaque, CLIENT, 6379), CLIENT, 'connection'), []);
    assert.equal(inboundConnections(MTLS, CLIENT, 6379).mtls, 0);
    const plain = opaque.replace('tls="true",client_id="' + CLIENT + '"', 'tls="no_identity",no_tls_reason="not_provided_by_remote"');
    assert.match(mtlsProblems(inboundConnections(plain, CLIENT, 6379), CLIENT, 'connection')[0]!, /^not mTLS: .*no inbound connection .*1 with tls="no_identity" no_tls_reason="not_provided_by_remote"/);
  });

  it('reports a proxy that counted nothing', () => {
    assert.match(mtlsProblems(inboundTls('', CLIENT), CLIENT)[0]!, /counted none at all/);
  });
});
