// What the saturation runs request. "tiny": GET / with only the generator's own headers and a
// 15-byte body, which measures a path's per-request overhead and nothing else. "realistic": the
// head a browser or an API client sends (a dozen headers, ~1 KB: cookies, a bearer token,
// tracing) and a 2 KB body served from a file, so the cost of carrying heads and bodies shows.
// Both are fixed: every request of a run is the same bytes.

export const WORKLOAD_NAMES = ['tiny', 'realistic'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export interface Workload {
  name: WorkloadName;
  /** Request target (path and query). */
  path: string;
  /** Request headers beyond Host (and what the generators add: wrk nothing, h2load user-agent/accept-encoding). */
  headers: readonly (readonly [string, string])[];
  /** Size of the response body, bytes. */
  bodyBytes: number;
  /** One line for the report's header. */
  summary: string;
}

/** The body nginx serves for the realistic workload. */
export const REALISTIC_BODY_BYTES = 2048;
export const REALISTIC_PATH = '/api/v1/items.json';

const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** A JWT as an identity provider issues one (ES256 header, OIDC-style claims), signature bytes fixed. */
function bearerToken(): string {
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: '9f1c2b7e' }));
  const claims = b64url(
    JSON.stringify({
      iss: 'https://auth.example.com/',
      sub: 'auth0|64a1f3c29b8e7d0012345678',
      aud: 'https://api.example.com',
      iat: 1767225600,
      exp: 1767312000,
      scope: 'openid profile email',
    }),
  );
  // An ES256 signature is 64 bytes.
  const signature = b64url(Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)));
  return `${header}.${claims}.${signature}`;
}

/** The realistic request head, in the order a browser sends it (Host comes first, from the generator). */
export const REALISTIC_HEADERS: readonly (readonly [string, string])[] = [
  ['User-Agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'],
  ['Accept', 'application/json, text/plain, */*'],
  ['Accept-Language', 'en-US,en;q=0.9'],
  ['Accept-Encoding', 'gzip, deflate, br'],
  ['Referer', 'https://shop.example.com/orders?page=2'],
  [
    'Cookie',
    '_ga=GA1.2.1283746501.1733011200; _gid=GA1.2.918273645.1735603200; ' +
      'session=s%3A4kHq2Vb9XzR1mN7pL0aT6yWcE3uJ8fGd.Qm2sT9vXb4KpR7nW1zYcL8fH3jD6gA0eU5iO2tBqNw7Rz; ' +
      'csrftoken=Jk3Lm9Pq2Rs8Tu4Vw7Xy1Za5Bc6De0Fg; theme=dark; locale=en-US; cart_id=7c9e6679-7425-40de-944b-e07fc1f90ae7',
  ],
  ['Authorization', `Bearer ${bearerToken()}`],
  ['X-Request-Id', '3f2b8c1e-9a4d-4e7b-b6f0-2d1c5a8e7f93'],
  ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
  ['Cache-Control', 'no-cache'],
  ['Sec-Fetch-Mode', 'cors'],
];

export const WORKLOADS: Record<WorkloadName, Workload> = {
  tiny: { name: 'tiny', path: '/', headers: [], bodyBytes: 15, summary: 'GET / with the generators\' own headers, 15-byte body' },
  realistic: {
    name: 'realistic',
    path: REALISTIC_PATH,
    headers: REALISTIC_HEADERS,
    bodyBytes: REALISTIC_BODY_BYTES,
    summary: '', // filled below, from the headers themselves
  },
};
WORKLOADS.realistic.summary =
  `GET ${REALISTIC_PATH} with ${REALISTIC_HEADERS.length} more headers (${headBytes(REALISTIC_HEADERS)} bytes: ` +
  `browser User-Agent, cookies, a bearer JWT, traceparent...), ${REALISTIC_BODY_BYTES}-byte body from a file`;

/** Bytes the header lines take in an HTTP/1.1 head ("Name: value\r\n" each). */
export function headBytes(headers: readonly (readonly [string, string])[]): number {
  return headers.reduce((n, [name, value]) => n + name.length + 2 + value.length + 2, 0);
}

/**
 * The 2 KB body: a JSON list of items, padded to exactly `bytes` with the last item's note.
 * Text, so it is the kind of payload an API returns (nginx serves it as it is: gzip is off).
 */
export function realisticBody(bytes = REALISTIC_BODY_BYTES): string {
  const items: string[] = [];
  const close = '\n]}\n';
  let text = '{"items": [\n';
  for (let i = 1; ; i++) {
    const item = `  {"id": ${1000 + i}, "sku": "SKU-${(i * 7919).toString(36).toUpperCase()}", "name": "Item ${i}", "price": ${(i * 3.75).toFixed(2)}, "in_stock": ${i % 3 !== 0}}`;
    const next = `${text}${items.length > 0 ? ',\n' : ''}${item}`;
    if (next.length + close.length + 40 > bytes) break;
    items.push(item);
    text = next;
  }
  // Padding inside a string value keeps the JSON valid at any size.
  const pad = bytes - text.length - close.length - ',\n  {"note": ""}'.length;
  text += `,\n  {"note": "${'x'.repeat(Math.max(0, pad))}"}${close}`;
  return text;
}

/** `--workload tiny|realistic|both` → the workloads, in the order they are run. */
export function workloadList(raw: string): WorkloadName[] {
  const v = raw.trim();
  if (v === 'both') return [...WORKLOAD_NAMES];
  if ((WORKLOAD_NAMES as readonly string[]).includes(v)) return [v as WorkloadName];
  throw new Error(`unknown workload "${raw}" (tiny, realistic or both)`);
}
