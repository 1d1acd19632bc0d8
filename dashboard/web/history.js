// What the page remembers of each workload's numbers, for its sparklines: the
// API answers "the last window, now"; the trend is the page's own record of
// those answers, kept while the tab is open.
const KEEP = 90; // 3 minutes at one reading every 2 s

/** @type {Map<string, Array<{ rps?: number, p99?: number, success?: number }>>} */
const byWorkload = new Map();

export function record(namespace, rows) {
  for (const r of rows) {
    const key = `${namespace}/${r.name}`;
    let h = byWorkload.get(key);
    if (!h) byWorkload.set(key, (h = []));
    h.push({ rps: r.rps, p99: r.p99, success: r.success });
    if (h.length > KEEP) h.splice(0, h.length - KEEP);
  }
}

export function series(namespace, name, field) {
  return (byWorkload.get(`${namespace}/${name}`) ?? []).map((p) => p[field]);
}
