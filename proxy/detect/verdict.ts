// What detection decides about a connection's first bytes. The proxy switches on
// `kind`; an opaque connection is still served (forwarded as bytes), `reason` says why.

export type OpaqueReason = 'unknown-protocol' | 'timeout' | 'too-large' | 'eof' | 'error';

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
