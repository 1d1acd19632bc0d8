// What detection decides about a connection's first bytes. The proxy switches on
// `kind`; an opaque connection is still served (forwarded as bytes), `reason` says why.

/**
 * 'server-first': the upstream opened during detection spoke (or closed) before the
 * client did; 'upstream-failed': that upstream could not be reached (or reset)
 * while the client was silent. Both are decided by detect/server-first.ts.
 */
export type OpaqueReason = 'unknown-protocol' | 'timeout' | 'too-large' | 'eof' | 'error' | 'server-first' | 'upstream-failed';

export type Detected =
  | { kind: 'http1' }
  | { kind: 'h2' } // prior-knowledge h2c: the 24-byte preface
  | { kind: 'tls'; sni: string | undefined; alpn: string[] } // a TLS ClientHello
  | { kind: 'opaque'; reason: OpaqueReason };

export type Verdict = Detected | { kind: 'need-more' };

// Shared, frozen answers: the hot path returns these without allocating.
export const NEED_MORE: Verdict = Object.freeze({ kind: 'need-more' });
export const HTTP1: Detected = Object.freeze({ kind: 'http1' });
export const H2: Detected = Object.freeze({ kind: 'h2' });

const opaque = (reason: OpaqueReason): Detected => Object.freeze({ kind: 'opaque', reason });
export const UNKNOWN_PROTOCOL = opaque('unknown-protocol');
export const TIMEOUT = opaque('timeout');
export const TOO_LARGE = opaque('too-large');
export const EOF = opaque('eof');
export const ERROR = opaque('error');
export const SERVER_FIRST = opaque('server-first');
export const UPSTREAM_FAILED = opaque('upstream-failed');
