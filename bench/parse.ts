// Readers for what wrk and h2load print. Pure functions over text, so they are tested with
// captured output; a line they cannot find is an error naming it, never a silent zero.

export interface SaturationResult {
  tool: 'wrk' | 'h2load';
  requests: number;
  rps: number;
  /** Latency percentiles in ms (wrk: 50/75/90/99 from --latency; h2load: from its request log). */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Responses outside 2xx (wrk counts outside 2xx/3xx). */
  non2xx: number;
  /** Socket-level failures: wrk's connect/read/write/timeout, h2load's failed/errored/timeout. */
  errors: number;
  errorDetail: string;
}

export class ParseError extends Error {
  readonly code = 'BENCH_UNPARSABLE_OUTPUT';
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "657.03us", "1.20ms", "2.00s" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new ParseError(`not a duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * TIME_UNITS[m[2]!]!;
}

function need(re: RegExp, text: string, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (!m) throw new ParseError(`no ${what} in output:\n${text}`);
  return m;
}

export function parseWrk(out: string): SaturationResult {
  const requests = Number(need(/^\s*(\d+) requests in /m, out, '"N requests in" line')[1]);
  const rps = Number(need(/^Requests\/sec:\s+([\d.]+)/m, out, 'Requests/sec')[1]);
  const pct = (p: number): number => parseDuration(need(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm'), out, `${p}% latency`)[1]!);
  const max = parseDuration(need(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m, out, 'Latency stats')[1]!);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tool: 'wrk',
    requests,
    rps,
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max },
    non2xx,
    errors,
    errorDetail: sock ? sock[0] : '',
  };
}

/** h2load's summary; its latency summary has no percentiles, so those come from its log. */
export function parseH2load(out: string, latencyMs: SaturationResult['latencyMs']): SaturationResult {
  const rps = Number(need(/^finished in [\d.]+\w+, ([\d.]+) req\/s/m, out, '"finished in" line')[1]);
  const r = need(
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m,
    out,
    'requests line',
  );
  const s = need(/^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m, out, 'status codes line');
  const [failed, errored, timeout] = [Number(r[5]), Number(r[6]), Number(r[7])];
  return {
    tool: 'h2load',
    requests: Number(r[3]),
    rps,
    latencyMs,
    non2xx: Number(s[2]) + Number(s[3]) + Number(s[4]),
    // h2load's "failed" counts 4xx/5xx responses as well as requests lost to the network; those
    // lost are also counted in "errored" (and "timeout"), depending on the version.
    errors: Math.max(failed - (Number(s[3]) + Number(s[4])), errored, timeout),
    errorDetail: `${r[0]}; ${s[0]}`,
  };
}

/** h2load --log-file rows: start µs since epoch, status, µs to the end of the response. */
export function h2loadLogLatencies(log: string): Float64Array {
  const lines = log.split('\n');
  const out = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const tab = line.lastIndexOf('\t');
    if (tab < 0) continue;
    const us = Number(line.slice(tab + 1));
    if (Number.isFinite(us)) out[n++] = us / 1000;
  }
  return out.subarray(0, n);
}
