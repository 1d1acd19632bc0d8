// The HPACK static table (RFC 7541 Appendix A). Index 0 is unused so that an HPACK index reads
// the arrays directly.

export const STATIC_COUNT = 61;

const ENTRIES: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

export const STATIC_NAMES: readonly string[] = ['', ...ENTRIES.map((e) => e[0])];
export const STATIC_VALUES: readonly string[] = ['', ...ENTRIES.map((e) => e[1])];

/** What the encoder needs to know about a name from the static table. */
export interface StaticName {
  /** The lowest index carrying this name (for a literal with an indexed name). */
  readonly index: number;
  /**
   * Values with an exact entry, beside their indexes (':method' → 'GET' → 2; 'accept' → '' → 19):
   * a few per name, compared with === (a map would hash every fresh value string to find it).
   */
  readonly valueList: readonly string[];
  readonly valueIndex: readonly number[];
}

function buildStaticNames(): ReadonlyMap<string, StaticName> {
  const byName = new Map<string, { index: number; valueList: string[]; valueIndex: number[] }>();
  for (let i = 1; i <= STATIC_COUNT; i++) {
    const name = STATIC_NAMES[i]!;
    const value = STATIC_VALUES[i]!;
    let entry = byName.get(name);
    if (entry === undefined) {
      entry = { index: i, valueList: [], valueIndex: [] };
      byName.set(name, entry);
    }
    entry.valueList.push(value);
    entry.valueIndex.push(i);
  }
  return byName;
}

export const STATIC_BY_NAME: ReadonlyMap<string, StaticName> = buildStaticNames();
