// Proxy errors with stable codes, and how each answers an HTTP client.
export type ProxyErrorCode =
  | 'MESH_CONNECT_TIMEOUT'
  | 'MESH_CONNECT_REFUSED'
  | 'MESH_CONNECT_FAILED'
  | 'MESH_UPSTREAM_RESET'
  | 'MESH_UPSTREAM_PROTOCOL'
  | 'MESH_NO_CONTEXT'
  // The request seam and its codecs (message/, h1/, h2/)
  | 'MESH_CLIENT_RESET' // the client reset or closed before its exchange was complete
  | 'MESH_CLIENT_PROTOCOL' // the client broke HTTP framing (answered 400 on HTTP/1, PROTOCOL_ERROR on h2)
  | 'MESH_HEAD_TIMEOUT' // a request head did not arrive in time
  | 'MESH_HEADERS_TOO_LARGE' // a head beyond the configured size or count
  | 'MESH_H2_REFUSED' // the peer refused the stream or went away before processing it: safe to retry
  | 'MESH_H2_ABUSE' // reset flood, settings flood or similar from one client: that connection is closed
  | 'MESH_FD_EXHAUSTED' // no descriptor to spare: a new connection refused at once
  // Discovery and resilience (discovery/, balance/, forward/retry.ts)
  | 'MESH_REQUEST_TIMEOUT' // the authority's config.mesh.io/timeout passed before the response was complete: 504
  // Explicit proxy mode (outbound/explicit.ts): a client that dialled the outbound listener itself
  | 'MESH_EXPLICIT_BAD_REQUEST' // not an absolute-form request or CONNECT, or no head in time (400)
  | 'MESH_EXPLICIT_METHOD' // a scheme the proxy does not originate (https:// absolute-form: use CONNECT) (405)
  | 'MESH_EXPLICIT_RESOLVE' // the request's host name did not resolve (502)
  // Mutual TLS between proxies (transport/tls.ts)
  | 'MESH_IDENTITY_NOT_READY'
  | 'MESH_PEER_IDENTITY_MISMATCH'
  | 'MESH_PEER_CERT_INVALID'
  | 'MESH_PEER_NOT_MESHED'
  | 'MESH_TLS_HANDSHAKE'
  | 'MESH_TLS_RECORD'; // a sealed session's record failed to open (transport/sealed.ts): the session is closed

export class ProxyError extends Error {
  constructor(readonly code: ProxyErrorCode, message: string) {
    super(message);
    this.name = 'ProxyError';
  }
}

/** Classifies a Node error from an upstream request. `connected`: had the socket connected? */
export function upstreamError(err: NodeJS.ErrnoException, connected: boolean): ProxyError {
  if (err instanceof ProxyError) return err;
  if (!connected) {
    if (err.code === 'ECONNREFUSED') return new ProxyError('MESH_CONNECT_REFUSED', `connection refused: ${err.message}`);
    return new ProxyError('MESH_CONNECT_FAILED', `connect failed: ${err.message}`);
  }
  if (err.code === 'HPE_INVALID_CONSTANT' || err.code?.startsWith('HPE_') || err.code === 'ERR_HTTP2_ERROR') {
    return new ProxyError('MESH_UPSTREAM_PROTOCOL', `upstream spoke invalid HTTP: ${err.message}`);
  }
  return new ProxyError('MESH_UPSTREAM_RESET', `upstream connection lost: ${err.message}`);
}

/** 504 for a connect or request that timed out, 502 for everything else the upstream did wrong. */
export function statusFor(e: ProxyError): number {
  return e.code === 'MESH_CONNECT_TIMEOUT' || e.code === 'MESH_REQUEST_TIMEOUT' ? 504 : 502;
}
