// The admin port: Prometheus /metrics, and the probes /live (the process
// answers) and /ready (the proxy can carry traffic).
import { createServer, type Server } from 'node:http';
import type { ListenAddress } from './config.js';
import type { ProxyMetrics } from './metrics.js';

export interface AdminOptions {
  metrics: ProxyMetrics;
  ready: () => boolean;
}

export function startAdmin(addr: ListenAddress, o: AdminOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics':
        // In pieces: a proxy with thousands of destinations has megabytes to say, and one string
        // (then one Buffer) of all of it would be held at once.
        o.metrics.registry.pieces().then(
          (pieces) => {
            let length = 0;
            for (const p of pieces) length += p.length;
            res.writeHead(200, { 'content-type': o.metrics.registry.contentType, 'content-length': length });
            for (const p of pieces) res.write(p);
            res.end();
          },
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
        );
        return;
      case '/live':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('live\n');
        return;
      case '/ready': {
        const ready = o.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /ready or /live\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: addr.host, port: addr.port, ipv6Only: false }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}
