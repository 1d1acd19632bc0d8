// The server every path ends at: nginx, one worker, a small fixed body at / (the tiny workload)
// and a 2 KB file at the realistic workload's path, HTTP/1.1 keep-alive on one port and
// prior-knowledge HTTP/2 (h2c) on another.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Pod, PodProcess } from '../lab/index.js';
import { onCpus, type Pinning } from './pin.js';
import { REALISTIC_PATH, realisticBody } from './workload.js';

export const NGINX_H1_PORT = 8080;
export const NGINX_H2_PORT = 8081;
/** 15 bytes, as in the NODE-NOTES baselines. */
export const BODY = 'hello from web\n';

export function nginxConfig(dir: string): string {
  // nginx reads \n inside a double-quoted string as a newline, as JSON writes it. The realistic
  // body is a file, as an app's static or cached response would be; open file descriptors are
  // cached (open_file_cache) so each request costs nginx a read, not an open and a close.
  const respond =
    `location / { default_type text/plain; return 200 ${JSON.stringify(BODY)}; } ` +
    `location = ${REALISTIC_PATH} { default_type application/json; root ${dir}/www; }`;
  return `# written by mesh bench
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # The default (1000) would close every busy connection each second at saturation, and the
  # reconnects would be measured as the path's cost.
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  open_file_cache max=16 inactive=1h;
  open_file_cache_valid 1h;
  server { listen ${NGINX_H1_PORT}; ${respond} }
  # "http2" without "ssl" is HTTP/2 with prior knowledge only (nginx before 1.25).
  server { listen ${NGINX_H2_PORT} http2; ${respond} }
}
`;
}

/** Starts nginx in `pod` on the serving CPUs; resolves once it is running (not yet answering). */
export function startNginx(pod: Pod, dir: string, pin: Pinning | undefined): PodProcess {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir));
  // nginx's worker is not root: it may pass through the scratch directory (not list it; the keys
  // in it are 0600 anyway) to read the body.
  const body = join(dir, 'www', REALISTIC_PATH);
  mkdirSync(dirname(body), { recursive: true, mode: 0o755 });
  writeFileSync(body, realisticBody(), { mode: 0o644 });
  chmodSync(dir, 0o711);
  const [cmd, args] = onCpus(pin, 'serve', '/usr/sbin/nginx', ['-e', 'stderr', '-p', dir, '-c', conf]);
  return pod.spawn(cmd, args);
}
