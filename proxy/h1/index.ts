// HTTP/1 codec: bytes ⇄ the request seam (message/types.ts).
//   server side: H1Server / H1ServerConnection → ServerStream per request
//   client side: H1Pool (Dispatcher for one endpoint) → H1ClientConnection
//   parser and serializer underneath, shared deadlines for timeouts.
export { H1Server } from './accept.js';
export { H1ServerConnection, type H1ServerOptions } from './server.js';
export { H1Parser, type H1ParserListener, type H1ParserOptions, type BodyKind } from './parser.js';
export { serializeRequest, serializeResponse, type Framing } from './serialize.js';
export { Deadlines, sharedDeadlines, type DeadlinesOptions, type Expiring } from './deadlines.js';
export { H1Pool, type H1PoolOptions } from './pool.js';
export { H1ClientConnection } from './client.js';
