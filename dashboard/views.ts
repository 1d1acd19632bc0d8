// What the dashboard's API answers, computed from the readings: a stat row per
// deployment (the numbers `mesh stat deploy` prints, over the rolling window)
// and a workload's edges (its inbound requests by client identity, its
// outbound requests by destination). Pure: the state in, plain JSON out.
import type { PodEntry } from '../contract/tap.js';
import { hostOf, INBOUND, rowOf, sumTotals, totalsOfSamples, windowOf, type Selector, type StatRow, type Totals } from '../cli/stat.js';
import type { NamespaceState } from './collector.js';

export interface WorkloadsView {
  namespace: string;
  /** The window the rates cover now (the longest any row has), seconds; 0 before two readings. */
  windowSeconds: number;
  problems: string[];
  rows: StatRow[];
}

export interface EdgeRow extends StatRow {
  /** The deployment at the other end when known, else its identity or address. */
  peer: string;
  /** inbound: the client's proven identity ('' when it had none); outbound: absent. */
  identity?: string;
  /** outbound: the destination's address. */
  address?: string;
}

export interface EdgesView {
  namespace: string;
  name: string;
  windowSeconds: number;
  pods: PodEntry[];
  inbound: EdgeRow[];
  outbound: EdgeRow[];
}

interface Windowed {
  totals: Totals;
  seconds: number;
}

/** The selected totals of some pods over their windows, and the longest window among them. */
function windowed(s: NamespaceState, pods: readonly PodEntry[], sel: Selector): Windowed | undefined {
  const parts: Totals[] = [];
  let seconds = 0;
  for (const p of pods) {
    const span = s.rings.get(p.address)?.span();
    if (span === undefined) continue;
    parts.push(windowOf(totalsOfSamples(span.first.samples, sel), totalsOfSamples(span.last.samples, sel)));
    // A pod read for less than the window (new, or the dashboard just started) shortens nobody else's;
    // the longest span is the rate's denominator, which under-reads only the newcomer's share.
    seconds = Math.max(seconds, (span.last.at - span.first.at) / 1000);
  }
  return parts.length === 0 ? undefined : { totals: sumTotals(parts), seconds };
}

const deploymentsOf = (pods: readonly PodEntry[]): Map<string, PodEntry[]> => {
  const out = new Map<string, PodEntry[]>();
  for (const p of pods) {
    let g = out.get(p.deployment);
    if (g === undefined) out.set(p.deployment, (g = []));
    g.push(p);
  }
  return out;
};

function row(name: string, meshed: string, w: Windowed | undefined): StatRow {
  return w === undefined ? rowOf(name, meshed, { responses: 0, success: 0, buckets: new Map(), tcpOpen: 0 }, undefined) : rowOf(name, meshed, w.totals, w.seconds);
}

export function workloadsView(namespace: string, s: NamespaceState): WorkloadsView {
  let windowSeconds = 0;
  const rows: StatRow[] = [];
  for (const [name, g] of deploymentsOf(s.pods)) {
    const meshed = g.filter((p) => p.identity !== undefined);
    const w = windowed(s, meshed, INBOUND);
    windowSeconds = Math.max(windowSeconds, w?.seconds ?? 0);
    rows.push(row(name, `${meshed.length}/${g.length}`, w));
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  return { namespace, windowSeconds, problems: s.problems, rows };
}

/** Distinct values of a label among one direction's response_total series of these pods' newest readings. */
function labelValues(s: NamespaceState, pods: readonly PodEntry[], direction: string, label: string, of: (v: string) => string = (v) => v): Set<string> {
  const out = new Set<string>();
  for (const p of pods) {
    for (const x of s.rings.get(p.address)?.latest()?.samples ?? []) {
      if (x.name === 'response_total' && x.labels.direction === direction) out.add(of(x.labels[label] ?? ''));
    }
  }
  return out;
}

/** A short peer name for an identity with no pod in view: `sa.ns` of `sa.ns.serviceaccount.identity.…`. */
const shortIdentity = (id: string): string => /^([^.]+\.[^.]+)\.serviceaccount\./.exec(id)?.[1] ?? id;

/** Undefined when the namespace has no such deployment. */
export function edgesView(namespace: string, name: string, s: NamespaceState): EdgesView | undefined {
  const pods = s.pods.filter((p) => p.deployment === name);
  if (pods.length === 0) return undefined;
  const meshed = pods.filter((p) => p.identity !== undefined);
  const byIdentity = new Map(s.pods.filter((p) => p.identity !== undefined).map((p) => [p.identity!, p.deployment]));
  const byAddress = new Map(s.pods.map((p) => [p.address, p.deployment]));
  let windowSeconds = 0;
  const edge = (sel: Selector, fields: Pick<EdgeRow, 'peer' | 'identity' | 'address'>): EdgeRow => {
    const w = windowed(s, meshed, sel);
    windowSeconds = Math.max(windowSeconds, w?.seconds ?? 0);
    return { ...row(name, `${meshed.length}/${pods.length}`, w), ...fields };
  };
  const inbound = [...labelValues(s, meshed, 'inbound', 'client_id')].map((id) =>
    edge({ direction: 'inbound', fromIdentities: new Set([id]) }, { peer: id === '' ? '(no identity)' : byIdentity.get(id) ?? shortIdentity(id), identity: id }),
  );
  const outbound = [...labelValues(s, meshed, 'outbound', 'target_addr', hostOf)].map((host) =>
    edge({ direction: 'outbound', toHosts: new Set([host]) }, { peer: byAddress.get(host) ?? host, address: host }),
  );
  const byPeer = (a: EdgeRow, b: EdgeRow): number => a.peer.localeCompare(b.peer);
  return { namespace, name, windowSeconds, pods, inbound: inbound.sort(byPeer), outbound: outbound.sort(byPeer) };
}
