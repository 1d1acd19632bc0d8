// HAProxy as the yardstick: one instance beside the client (the client-side proxy) and one
// beside the server, configured like the mesh path: a hop for HTTP/1.1 and a hop for h2c.
//
// mode http parses and re-frames every request (what mesh-proxy does); mode tcp only copies
// bytes. Between the proxies the bytes go as plain TCP, or over mutual TLS as the mesh sends
// them: the client side presents its leaf, checks the server side's chain against the anchor
// and its name against the SNI it sends; the server side requires a client certificate.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pod, PodProcess } from '../lab/index.js';
import { onCpus, type Pinning } from './pin.js';

export type HaproxyMode = 'http' | 'tcp';
export type Between = 'plain' | 'mtls';

/** What the HTTP/1.1 hop speaks inside the TLS connection between the proxies (mode http). */
export type H1Between = 'h2' | 'http/1.1';

/**
 * One side's part in the mTLS between the proxies. The client side originates it (and names
 * the server side); the server side terminates it.
 */
export type HopTls =
  | { side: 'client'; crt: string; caFile: string; serverName: string; h1As: H1Between }
  | { side: 'server'; crt: string; caFile: string };

interface HopCommon {
  mode: HaproxyMode;
  /** Where it listens and where it forwards, for the HTTP/1.1 and the h2c hop. */
  h1: { bind: string; to: string };
  h2: { bind: string; to: string };
  /** mode tcp: a third hop for the opaque bulk transfer (bench/bulk.ts). */
  bulk?: { bind: string; to: string };
}

export type HaproxyHop = HopCommon & ({ between: 'plain' } | { between: 'mtls'; tls: HopTls });

export function haproxyConfig(hop: HaproxyHop): string {
  const http = hop.mode === 'http';
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
  bind ${hop.h1.bind}${bindOptions(hop, 'h1')}
  default_backend h1
backend h1
  server next ${hop.h1.to}${serverOptions(hop, 'h1')}
frontend h2
  bind ${hop.h2.bind}${bindOptions(hop, 'h2')}
  default_backend h2
backend h2
  server next ${hop.h2.to}${serverOptions(hop, 'h2')}
${hop.bulk && !http ? `frontend bulk
  bind ${hop.bulk.bind}${bindOptions(hop, 'bulk')}
  default_backend bulk
backend bulk
  server next ${hop.bulk.to}${serverOptions(hop, 'bulk')}
` : ''}`;
}

/** h2c with prior knowledge, on a plaintext HTTP hop that carries h2; a tcp hop names no protocol. */
const priorKnowledge = (hop: HaproxyHop, which: Hop): string => (hop.mode === 'http' && which === 'h2' ? ' proto h2' : '');

type Hop = 'h1' | 'h2' | 'bulk';

function bindOptions(hop: HaproxyHop, which: Hop): string {
  if (hop.between === 'plain' || hop.tls.side === 'client') return priorKnowledge(hop, which);
  const { crt, caFile } = hop.tls;
  // ALPN picks the protocol in mode http: h2 for what the client side multiplexes, HTTP/1.1
  // for a client side told to keep HTTP/1.1 on the h1 hop. A tcp hop has no use for it.
  const alpn = hop.mode === 'tcp' ? '' : which === 'h2' ? ' alpn h2' : ' alpn h2,http/1.1';
  return ` ssl crt ${crt} ca-file ${caFile} verify required${alpn}`;
}

function serverOptions(hop: HaproxyHop, which: Hop): string {
  if (hop.between === 'plain' || hop.tls.side === 'server') return priorKnowledge(hop, which);
  const { crt, caFile, serverName, h1As } = hop.tls;
  // With `verify required`, HAProxy also matches the SNI it sends against the server's names.
  const alpn = hop.mode === 'tcp' ? '' : ` alpn ${which === 'h2' ? 'h2' : h1As}`;
  return ` ssl crt ${crt} ca-file ${caFile} verify required sni str(${serverName})${alpn}`;
}

/** Starts one HAProxy in `pod`, in the foreground (-db), one process, on the serving CPUs. */
export function startHaproxy(pod: Pod, dir: string, name: string, hop: HaproxyHop, pin: Pinning | undefined): PodProcess {
  const conf = join(dir, `haproxy-${name}.cfg`);
  writeFileSync(conf, haproxyConfig(hop));
  const [cmd, args] = onCpus(pin, 'serve', '/usr/sbin/haproxy', ['-db', '-f', conf]);
  return pod.spawn(cmd, args);
}
