// One line per event, logfmt-style (key=value), to stderr. Debug lines are
// built only when debug is on, so the data path pays nothing for them.
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class Log {
  constructor(private readonly level: LogLevel, private readonly sink: (line: string) => void = (l) => process.stderr.write(l)) {}

  enabled(level: LogLevel): boolean {
    return rank[level] <= rank[this.level];
  }

  write(level: LogLevel, msg: string, fields: Record<string, string | number | undefined> = {}): void {
    if (!this.enabled(level)) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase()} ${msg}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = String(v);
      line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    }
    this.sink(`${line}\n`);
  }

  error(msg: string, fields?: Record<string, string | number | undefined>): void {
    this.write('error', msg, fields);
  }
  warn(msg: string, fields?: Record<string, string | number | undefined>): void {
    this.write('warn', msg, fields);
  }
  info(msg: string, fields?: Record<string, string | number | undefined>): void {
    this.write('info', msg, fields);
  }
  debug(msg: string, fields?: Record<string, string | number | undefined>): void {
    this.write('debug', msg, fields);
  }
}
