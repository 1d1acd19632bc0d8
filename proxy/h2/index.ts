// HTTP/2 (RFC 9113) for the proxy's hot path: our own framing over a socket.
//   H2ServerConnection: a client's connection → ServerStream per request (ServerHandler)
//   H2ClientConnection: a connection we dialled → Dispatcher (request → ClientStream)
// HPACK is in ./hpack/; frames in frames.ts; the shared engine in connection.ts.
export { H2ServerConnection } from './server.js';
export { H2ClientConnection } from './client.js';
export type { H2Options, Limits } from './limits.js';
export { PROFILES } from './limits.js';
export { PREFACE } from './frames.js';
