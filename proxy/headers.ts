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

/**
 * Raw header list ([name, value, name, value, ...], original case and order)
 * without hop-by-hop headers. Returns the input itself when there is nothing
 * to drop beyond the fixed set's absence, the common case, to avoid a copy.
 */
export function endToEnd(raw: string[]): string[] {
  let named: Set<string> | undefined;
  let drop = false;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    // Per request, per header: only a name as long as a hop-by-hop one is
    // lower-cased (a new string each time for mixed case) and looked up.
    if (!HOP_LENGTHS[n.length]) continue;
    const name = n.toLowerCase();
    if (name === 'connection') {
      named ??= new Set();
      for (const token of raw[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
    if (hopByHop.has(name)) drop = true;
  }
  if (!drop && named === undefined) return raw;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (hopByHop.has(name) || named?.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
