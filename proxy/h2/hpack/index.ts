// HPACK (RFC 7541) for the proxy's own HTTP/2 framing: one decoder and one encoder per
// connection. Strings are latin1: one char per octet, so obs-text round-trips exactly.
export { HpackDecoder, HpackError } from './decoder.js';
export type { HpackDecoderOptions, HpackErrorCode } from './decoder.js';
export { encodedBlock, HpackEncoder } from './encoder.js';
export type { HpackEncoderOptions } from './encoder.js';
