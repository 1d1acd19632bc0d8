// Opaque bulk: BYTES each way at once over one TCP connection, with half-close, through a path's
// opaque port; every byte checked (SHA-256, both ways). 6379 is one of the mesh's default opaque
// ports (Redis's), so on the mesh paths the bytes cross both proxies as TCP, mTLS between them.
// The sender runs on the load CPUs; the receiving end beside nginx and the proxies on the
// serving CPUs: pinned as every other bench run is. The peer is the limits tests' bulk-peer
// fixture, which hashes both directions and stamps each 64 KiB chunk with its index.
import { eventually, type Pod, type PodProcess } from '../lab/index.js';
import { fixture, node } from '../test/mesh.js';
import { onCpus, type Pinning } from './pin.js';
import type { Endpoint, Topology } from './topology.js';

export const BULK_PORT = 6379;

export interface BulkResult {
  /** Bytes each way. */
  bytes: number;
  /** From connect until both directions had ended, at the sender. */
  ms: number;
  /** Both directions together, 10^6 bytes a second. */
  mbPerS: number;
  /** Every byte arrived, in order, both ways (SHA-256 of what was sent against what arrived). */
  intact: boolean;
  /** Why not, when not. */
  problem?: string;
}

export interface PeerReport {
  role: 'client' | 'server';
  sent: number;
  sentSha: string;
  received: number;
  receivedSha: string;
  ms: number;
  error?: string;
}

/** The receiving end, in the server pod; each connection it takes sends `bytes` back. */
export function startBulkServer(pod: Pod, pin: Pinning | undefined, bytes: number): PodProcess {
  const [cmd, args] = onCpus(pin, 'serve', node, [fixture('bulk-peer.js'), 'serve', String(BULK_PORT), String(bytes)]);
  return pod.spawn(cmd, args);
}

const serverReports = (server: PodProcess): string[] => server.lines().filter((l) => l.startsWith('{"role":"server"'));

/** One transfer through `target`; `bytes` must be what the server was started with. */
export async function bulkTransfer(client: Pod, pin: Pinning | undefined, server: PodProcess, target: Endpoint, bytes: number, timeoutMs: number): Promise<BulkResult> {
  const seen = serverReports(server).length;
  const [cmd, args] = onCpus(pin, 'load', node, [fixture('bulk-peer.js'), 'send', target.host, String(target.port), String(bytes)]);
  const r = await client.exec(cmd, args, { timeoutMs });
  const fail = (problem: string, ms = NaN): BulkResult => ({ bytes, ms, mbPerS: NaN, intact: false, problem });
  let sent: PeerReport;
  try {
    sent = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as PeerReport;
  } catch {
    return fail(`the sender said nothing usable (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 200)}`);
  }
  if (sent.error !== undefined) return fail(`sender: ${sent.error}`);
  let got: PeerReport;
  try {
    await eventually(() => serverReports(server).length > seen, { timeoutMs: 10_000, what: 'the receiving end to report' });
    got = JSON.parse(serverReports(server)[seen]!) as PeerReport;
  } catch (err) {
    return fail((err as Error).message, sent.ms);
  }
  return judge(bytes, sent, got);
}

/**
 * Transfers through `target` of what the topology's receiving end was started with, each a call.
 * The time allowed is generous: 30 MB/s would be a broken path, not a slow one.
 */
export function transfersThrough(t: Topology, target: Endpoint): () => Promise<BulkResult> {
  const end = t.bulk!;
  return () => bulkTransfer(t.client, t.pin, end.server, target, end.bytes, 60_000 + (2 * end.bytes) / 30_000);
}

/** `ms` of CPU over a transfer of `bytes` each way, per GiB carried (each way counted). */
export function msPerGiB(ms: number, bytes: number): number {
  return ms / ((2 * bytes) / 2 ** 30);
}

/** What two peers' reports say about a transfer (exported for the tests). */
export function judge(bytes: number, client: PeerReport, server: PeerReport): BulkResult {
  const problems: string[] = [];
  if (server.error !== undefined) problems.push(`receiving end: ${server.error}`);
  if (client.sent !== bytes || server.received !== bytes || server.receivedSha !== client.sentSha) {
    problems.push(`client to server: ${server.received} of ${client.sent} bytes${server.receivedSha === client.sentSha ? '' : ', digest differs'}`);
  }
  if (server.sent !== bytes || client.received !== bytes || client.receivedSha !== server.sentSha) {
    problems.push(`server to client: ${client.received} of ${server.sent} bytes${client.receivedSha === server.sentSha ? '' : ', digest differs'}`);
  }
  const mbPerS = (2 * bytes) / 1e6 / (client.ms / 1000);
  return problems.length === 0 ? { bytes, ms: client.ms, mbPerS, intact: true } : { bytes, ms: client.ms, mbPerS, intact: false, problem: problems.join('; ') };
}
