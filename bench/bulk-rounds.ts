// Opaque bulk head to head: direct and the paths that carry opaque TCP (the mesh, HAProxy doing
// tcp+mTLS), one transfer each per round, in turns. The main bulk figure (bench/measure.ts) takes
// direct's transfer and the mesh's from runs ~5 minutes apart, and the VM's speed drifts by more
// than the gap being measured: in four full runs direct ranged 279-325 MB/s while the mesh's own
// transfers stayed within 176-185. Here each round's ratio is over a direct transfer from the
// same minute, and the median of the rounds is the figure, as with the HTTP head to head
// (bench/rounds.ts).
import { cpuMs } from './procfs.js';
import { msPerGiB, transfersThrough } from './bulk.js';
import { upPath, type PathName } from './paths.js';
import { median } from './rounds.js';
import type { Topology } from './topology.js';

export interface BulkTurn {
  path: PathName;
  /** Both directions together, 10^6 bytes a second (a failed transfer fails the head to head). */
  mbPerS: number;
  /** CPU the path's proxies spent, ms per GiB carried (each way counted), their mean; NaN with none. */
  cpuMsPerGiB: number;
}

export interface BulkHeadToHead {
  /** Bytes each way of each measured transfer. */
  bytes: number;
  /** The paths in turn order; the first is the reference (direct). */
  paths: PathName[];
  /** One turn per path per round, in `paths` order. */
  rounds: BulkTurn[][];
  /** Each path but the first over the first, per round, and their medians. */
  ratios: Partial<Record<PathName, number[]>>;
  median: Partial<Record<PathName, number>>;
}

/** The per-round ratios over the first path and their medians, from the turns. */
export function summarizeBulk(paths: PathName[], bytes: number, rounds: BulkTurn[][]): BulkHeadToHead {
  const ratios: BulkHeadToHead['ratios'] = {};
  const med: BulkHeadToHead['median'] = {};
  paths.forEach((name, i) => {
    if (i === 0) return;
    const r = rounds.map((turns) => turns[i]!.mbPerS / turns[0]!.mbPerS);
    ratios[name] = r;
    med[name] = median(r);
  });
  return { bytes, paths, rounds, ratios, median: med };
}

/** One turn: the path up, a warm-up transfer (as in bench/measure.ts: a JIT compiles the tunnel's code in its first seconds), the measured one, the path down. */
async function turn(t: Topology, name: PathName): Promise<BulkTurn> {
  const end = t.bulk!;
  const path = await upPath(t, name);
  try {
    if (path.bulk === undefined) throw new Error(`${name} carries no opaque TCP`);
    const transfer = transfersThrough(t, path.bulk);
    const warm = await transfer();
    if (!warm.intact) throw new Error(`${name}: bulk warm-up: ${warm.problem}`);
    const cpu = (): number[] => path.proxies.map((p) => cpuMs(p.pid));
    const before = cpu();
    const b = await transfer();
    const after = cpu();
    if (!b.intact) throw new Error(`${name}: bulk transfer: ${b.problem}`);
    const cpuMsPerGiB = before.length === 0 ? NaN : msPerGiB(after.reduce((s, c, i) => s + c - before[i]!, 0) / before.length, end.bytes);
    return { path: name, mbPerS: b.mbPerS, cpuMsPerGiB };
  } finally {
    await path.down();
  }
}

/** `rounds` rounds of one transfer per path, `paths[0]` (direct) first in each. */
export async function bulkHeadToHead(t: Topology, paths: PathName[], rounds: number, progress: (line: string) => void): Promise<BulkHeadToHead> {
  if (t.bulk === undefined) throw new Error('the topology has no bulk receiving end');
  const bytes = t.bulk.bytes;
  const done: BulkTurn[][] = [];
  for (let i = 1; i <= rounds; i++) {
    progress(`bulk head to head, round ${i} of ${rounds}: ${paths.join(', ')} (${bytes / 1048576} MiB each way, after a warm-up transfer)`);
    const turns: BulkTurn[] = [];
    for (const name of paths) turns.push(await turn(t, name));
    done.push(turns);
  }
  return summarizeBulk(paths, bytes, done);
}
