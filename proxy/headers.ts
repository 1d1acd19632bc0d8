// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not
// forwarded: the fixed set, plus any header the Connection header names.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Lengths of the fixed hop-by-hop names (2 "te" ... 19 "proxy-authorization"). */
const HOP_LENGTHS: boolean[] = [];
for (const name of hopByHop) HOP_LENGTHS[name.length] = true;

const HOP_NAMES = [...hopByHop];

/** The value of the first field named exactly `lower` (h2 names are lower case), in a [name, value, ...] list. */
export function field(headers: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === lower) return headers[i + 1];
  return undefined;
}

/** `name` equals `lower` ignoring ASCII case (`lower` is lower case), without making a string (field names are ASCII tokens). */
export function sameLower(name: string, lower: string): boolean {
  const n = name.length;
  if (n !== lower.length) return false;
  for (let k = 0; k < n; k++) {
    let c = name.charCodeAt(k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** The fixed hop-by-hop name `name` is, in any case; undefined when none. */
function hopName(name: string): string | undefined {
  if (!HOP_LENGTHS[name.length]) return undefined;
  for (let k = 0; k < HOP_NAMES.length; k++) if (sameLower(name, HOP_NAMES[k]!)) return HOP_NAMES[k];
  return undefined;
}

/**
 * Raw header list ([name, value, name, value, ...], original case and order)
 * without hop-by-hop headers. Returns the input itself when there is nothing
 * to drop, the common case for requests, to avoid a copy. Per header, names
 * are compared in place (no lower-cased copy, no hashing): most responses
 * carry `Connection: keep-alive`, so this runs to the copy on nearly every one.
 */
export function endToEnd(raw: string[]): string[] {
  // Lower-cased names the Connection header adds to the fixed set.
  let named: string[] | undefined;
  let drop = false;
  for (let i = 0; i < raw.length; i += 2) {
    const hop = hopName(raw[i]!);
    if (hop === undefined) continue;
    drop = true;
    if (hop !== 'connection') continue;
    const v = raw[i + 1]!;
    // The usual values name nothing beyond the fixed set but "close": no split.
    if (sameLower(v, 'keep-alive')) continue;
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && !hopByHop.has(t)) (named ??= []).push(t);
    }
  }
  if (!drop) return raw;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (hopName(n) !== undefined || (named !== undefined && namedBy(named, n))) continue;
    out.push(n, raw[i + 1]!);
  }
  return out;
}

function namedBy(named: string[], name: string): boolean {
  for (let k = 0; k < named.length; k++) if (sameLower(name, named[k]!)) return true;
  return false;
}
