// Microbenchmark of the HTTP/1 head parser against llhttp (the parser node:http
// uses, driven through its binding so only parsing is measured):
//   node dist/proxy/h1/bench.js [--ms 2000]
// Not a test. Keep runs short: other people measure on this machine.
import type { HeaderList, RequestHead } from '../message/types.js';
import type { ProxyError } from '../errors.js';
import { H1Parser, type H1ParserListener } from './parser.js';

const realistic = Buffer.from(
  'GET /api/v2/orders/8f14e45f-ceea-467f-a0e6-1c9a1b6b2c5d/items?limit=50&cursor=eyJvZmZzZXQiOjUwfQ%3D%3D HTTP/1.1\r\n' +
    'Host: orders.shop.svc.cluster.local:8080\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n' +
    'Accept: application/json, text/plain, */*\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n' +
    'Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoib3JkZXJzIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl\r\n' +
    'Cookie: session=3c9f1e2a7b8d4e6f; _ga=GA1.2.1234567890.1700000000; prefs=theme%3Ddark%26lang%3Den; csrftoken=a1b2c3d4e5f6a7b8c9d0\r\n' +
    'X-Request-Id: 5b0c3f2e-1d4a-4f6b-9c8e-7a6b5c4d3e2f\r\n' +
    'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n' +
    'X-Forwarded-For: 10.1.2.3, 10.4.5.6\r\n' +
    'Cache-Control: no-cache\r\n' +
    'Referer: https://shop.example.com/orders/8f14e45f\r\n' +
    'Connection: keep-alive\r\n\r\n',
  'latin1',
);
const tiny = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');

class Sink implements H1ParserListener {
  heads = 0;
  last: RequestHead | undefined;
  onRequestHead(h: RequestHead): void {
    this.heads++;
    this.last = h;
  }
  onResponseHead(): void {}
  onBody(): boolean {
    return true;
  }
  onMessageEnd(_t: HeaderList | undefined): void {}
  onParseError(e: ProxyError): void {
    throw e;
  }
}

function ours(input: Buffer, ms: number): number {
  const sink = new Sink();
  const p = new H1Parser('request', sink);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 1000; i++) p.execute(input, 0);
    n += 1000;
  }
  return n / ((performance.now() - t0) / 1000);
}

interface NativeParser {
  [k: number]: unknown;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): unknown;
}
interface Binding {
  HTTPParser: { new (): NativeParser; REQUEST: number; kOnHeadersComplete: number; kOnMessageComplete: number; kOnBody: number; kOnHeaders: number };
}

function llhttp(input: Buffer, ms: number): number {
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  const { HTTPParser } = (process as unknown as { binding(n: string): Binding }).binding('http_parser');
  process.noDeprecation = quiet;
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  let heads = 0;
  p[HTTPParser.kOnHeaders] = (): void => {};
  p[HTTPParser.kOnHeadersComplete] = (): number => {
    heads++;
    return 0;
  };
  p[HTTPParser.kOnBody] = (): void => {};
  p[HTTPParser.kOnMessageComplete] = (): void => {};
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 1000; i++) p.execute(input);
    n += 1000;
  }
  if (heads !== n) throw new Error(`llhttp parsed ${heads} of ${n}`);
  return n / ((performance.now() - t0) / 1000);
}

const i = process.argv.indexOf('--ms');
const ms = i >= 0 ? Number(process.argv[i + 1]) : 2000;
const fmt = (x: number): string => `${Math.round(x / 1000)}k heads/s`;
for (const [name, input] of [['realistic', realistic], ['tiny', tiny]] as const) {
  ours(input, 200); // warm-up
  llhttp(input, 200);
  const a = ours(input, ms);
  const b = llhttp(input, ms);
  process.stdout.write(`${name} (${input.length} B): ours ${fmt(a)}, llhttp via its binding ${fmt(b)} (ours/llhttp ${(a / b).toFixed(2)})\n`);
}
