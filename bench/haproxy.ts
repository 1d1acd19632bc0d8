// HAProxy as the yardstick: one instance beside the client (the client-side proxy) and one
// beside the server, configured like the mesh path: a hop for HTTP/1.1 and a hop for h2c.
//
// mode http parses and re-frames every request (what mesh-proxy will do once it speaks HTTP);
// mode tcp only copies bytes (what mesh-proxy does today). Between the proxies the bytes go as
// plain TCP for now; an mTLS variant adds `ssl crt <leaf> ca-file <root> verify required` to the
// server side's binds and to the client side's server lines (`Between` grows a 'mtls' case).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pod, PodProcess } from '../lab/index.js';
import { onCpus, type Pinning } from './pin.js';

export type HaproxyMode = 'http' | 'tcp';
export type Between = 'plain';

export interface HaproxyHop {
  mode: HaproxyMode;
  between: Between;
  /** Where it listens and where it forwards, for the HTTP/1.1 and the h2c hop. */
  h1: { bind: string; to: string };
  h2: { bind: string; to: string };
}

export function haproxyConfig(hop: HaproxyHop): string {
  const http = hop.mode === 'http';
  // h2c with prior knowledge on both sides of an HTTP hop; a tcp hop needs no protocol named.
  const h2 = http ? ' proto h2' : '';
  return `# written by mesh bench
global
  nbthread 1
  maxconn 8000
defaults
  mode ${hop.mode}
  maxconn 8000
  timeout connect 1s
  timeout client 300s
  timeout server 300s
${http ? `  timeout http-keep-alive 300s
  # Idle server connections are shared between client connections, as a mesh proxy's pool is.
  http-reuse always
` : ''}frontend h1
  bind ${hop.h1.bind}
  default_backend h1
backend h1
  server nginx ${hop.h1.to}
frontend h2
  bind ${hop.h2.bind}${h2}
  default_backend h2
backend h2
  server nginx ${hop.h2.to}${h2}
`;
}

/** Starts one HAProxy in `pod`, in the foreground (-db), one process, on the serving CPUs. */
export function startHaproxy(pod: Pod, dir: string, name: string, hop: HaproxyHop, pin: Pinning | undefined): PodProcess {
  const conf = join(dir, `haproxy-${name}.cfg`);
  writeFileSync(conf, haproxyConfig(hop));
  const [cmd, args] = onCpus(pin, 'serve', '/usr/sbin/haproxy', ['-db', '-f', conf]);
  return pod.spawn(cmd, args);
}
