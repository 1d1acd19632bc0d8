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

/**
 * Raw header list ([name, value, name, value, ...], original case and order)
 * without hop-by-hop headers. Returns the input itself when there is nothing
 * to drop beyond the fixed set's absence, the common case, to avoid a copy.
 */
export function endToEnd(raw: string[]): string[] {
  let named: Set<string> | undefined;
  let drop = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
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

/** The first value of a header in a raw list, case-insensitively. */
export function rawHeader(raw: string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === lowerName) return raw[i + 1];
  return undefined;
}

/** Re-serializes a request head exactly as received, for a raw (Upgrade, CONNECT) tunnel. */
export function requestHead(method: string, url: string, version: string, raw: string[]): Buffer {
  let head = `${method} ${url} HTTP/${version}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** [name, value, name, value] → [[name, value], ...], the shape addTrailers takes. */
export function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/**
 * The request header list to send upstream over HTTP/1, with its body framing
 * made explicit. Node's client frames a body it was not told about by method:
 * chunked for POST and PUT, but raw for GET, HEAD, DELETE, OPTIONS, TRACE and
 * CONNECT. A GET whose body came chunked would then reach the server as bare
 * bytes after the head, which the server reads as a second request (request
 * smuggling). So a body without a Content-Length always goes chunked, whatever
 * the method; `chunkedBody` says a body follows with no length.
 */
export function framedRequestHeaders(raw: string[], chunkedBody: boolean): string[] {
  if (!chunkedBody || rawHeader(raw, 'content-length') !== undefined) return raw;
  return [...raw, 'Transfer-Encoding', 'chunked'];
}
