// POST /destination.mesh.io/v1/get: one GetRequest in, a stream of Updates out
// (contract/destination.ts). Validation refuses with 400 before the first line;
// after that the stream carries the resolver's answers until either side ends it.
import { DESTINATION_GET_PATH, type GetRequest } from '../../contract/destination.js';
import { malformed, type JsonStreamEndpoint } from '../../shared/api.js';
import type { Log } from '../../shared/log.js';
import { parseAuthority } from './authority.js';
import type { Resolver } from './resolver.js';

function readRequest(body: unknown): GetRequest {
  const b = body as Partial<GetRequest> | null;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw malformed('body must be an object { authority, contextNamespace? }');
  if (typeof b.authority !== 'string' || b.authority === '') throw malformed('authority must be a non-empty string');
  if (b.contextNamespace !== undefined && typeof b.contextNamespace !== 'string') throw malformed('contextNamespace must be a string');
  return { authority: b.authority, contextNamespace: b.contextNamespace === '' ? undefined : b.contextNamespace };
}

export function getEndpoint(o: { resolver: Resolver; clusterDomain: string; log: Log }): JsonStreamEndpoint {
  return {
    path: DESTINATION_GET_PATH,
    handle(body, meta, emit, signal) {
      const req = readRequest(body);
      const authority = parseAuthority(req.authority, { contextNamespace: req.contextNamespace, clusterDomain: o.clusterDomain });
      const stop = o.resolver.subscribe(authority, emit);
      o.log.debug('subscribed', { authority: req.authority, remote: meta.remote });
      signal.addEventListener('abort', () => {
        stop();
        o.log.debug('unsubscribed', { authority: req.authority, remote: meta.remote });
      });
    },
    failed(error, meta, body) {
      o.log.warn('refused', { code: error.code, error: error.message, remote: meta.remote, authority: (body as { authority?: string } | undefined)?.authority });
    },
  };
}
