// Go's duration syntax, as Linkerd's flags and annotations take it: "24h",
// "1h30m", "2s", "500ms". One parser for the CLI's flags and the destination
// service's settings; each caller words its own refusal.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export type DurationProblem = 'syntax' | 'zero';

/** Milliseconds, or why not: not the syntax, or not longer than zero. */
export function parseGoDuration(raw: string): number | DurationProblem {
  const text = raw.trim();
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let ms = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (m === null) break;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = part.lastIndex;
  }
  if (text === '' || at !== text.length) return 'syntax';
  if (!(ms > 0)) return 'zero';
  return Math.round(ms);
}
