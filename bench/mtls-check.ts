// Did the requests really cross the mesh over mTLS? The server-side proxy's own metrics say:
// every inbound request is counted with the `tls` label family (tls="true" and the client's
// identity in client_id when mTLS was in place). Pure, so it is tested on captured text.
import { parseMetrics } from '../cli/prom-text.js';

export interface InboundTls {
  /** Inbound requests that arrived over mTLS from `client`. */
  mtls: number;
  /** Every other inbound request, by how it arrived (e.g. `tls="no_identity" no_tls_reason="..."`). */
  other: Map<string, number>;
}

export function inboundTls(metricsText: string, client: string): InboundTls {
  return classify(metricsText, client, 'request_total', () => true);
}

/** The same for the connections accepted for one target port (tcp_open_total): how opaque TCP to it arrived. */
export function inboundConnections(metricsText: string, client: string, port: number): InboundTls {
  return classify(metricsText, client, 'tcp_open_total', (target) => target?.endsWith(`:${port}`) === true);
}

function classify(metricsText: string, client: string, name: string, target: (addr: string | undefined) => boolean): InboundTls {
  const out: InboundTls = { mtls: 0, other: new Map() };
  for (const s of parseMetrics(metricsText)) {
    if (s.name !== name || s.labels.direction !== 'inbound' || !(s.value > 0) || !target(s.labels.target_addr)) continue;
    if (s.labels.tls === 'true' && s.labels.client_id === client) {
      out.mtls += s.value;
      continue;
    }
    const how = ['tls', 'no_tls_reason', 'client_id']
      .filter((k) => s.labels[k] !== undefined)
      .map((k) => `${k}="${s.labels[k]}"`)
      .join(' ') || 'no tls label';
    out.other.set(how, (out.other.get(how) ?? 0) + s.value);
  }
  return out;
}

/** What is wrong with a path that should carry every request (or connection: `what`) over mTLS from `client`; empty when nothing. */
export function mtlsProblems(seen: InboundTls, client: string, what = 'request'): string[] {
  const others = [...seen.other].map(([how, n]) => `${n} with ${how}`).join(', ');
  if (seen.mtls === 0) {
    return [`not mTLS: the server-side proxy counted no inbound ${what} with tls="true" client_id="${client}"${others ? ` (it counted ${others})` : ' (it counted none at all)'}`];
  }
  if (others) return [`partly mTLS: the server-side proxy counted ${seen.mtls} inbound ${what}s over mTLS from ${client}, and ${others}`];
  return [];
}
