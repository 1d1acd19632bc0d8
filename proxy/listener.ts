// TCP listeners for the proxy's ports. A transparent listener (TPROXY) gets
// IP_TRANSPARENT after listen(), which the kernel allows and Node can't do.
import { createServer, type Server, type Socket } from 'node:net';
import { setTransparent } from '../native/index.js';
import type { ListenAddress } from './config.js';
import type { Log } from './log.js';

export interface ListenOptions {
  transparent: boolean;
  name: string;
}

function listenOne(addr: ListenAddress, onSocket: (s: Socket) => void, opts: ListenOptions): Promise<Server> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a client's FIN must not close our side; the server may still be answering.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true }, onSocket);
    server.once('error', reject);
    server.listen({ host: addr.host, port: addr.port, backlog: 4096, ipv6Only: false }, () => {
      server.removeListener('error', reject);
      try {
        if (opts.transparent) setTransparent(server);
      } catch (err) {
        server.close();
        reject(err);
        return;
      }
      resolve(server);
    });
  });
}

/**
 * Listens on every address; an IPv6 address on a host without IPv6 is skipped
 * with a warning rather than failing start-up, as long as one address works.
 */
export async function listenAll(addrs: ListenAddress[], onSocket: (s: Socket) => void, opts: ListenOptions, log: Log): Promise<Server[]> {
  const servers: Server[] = [];
  for (const addr of addrs) {
    try {
      servers.push(await listenOne(addr, onSocket, opts));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (addr.host.includes(':') && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') && addrs.length > 1) {
        log.warn('listener skipped: no IPv6 here', { listener: opts.name, addr: `[${addr.host}]:${addr.port}` });
        continue;
      }
      for (const s of servers) s.close();
      throw err;
    }
  }
  return servers;
}
