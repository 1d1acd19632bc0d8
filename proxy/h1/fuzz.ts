// Seeded fuzzer for the HTTP/1 parser:
//   node dist/proxy/h1/fuzz.js --iterations 1000000 --seed 42 [--mode request|response|both]
// Valid messages (methods, targets, header sets, Content-Length and chunked
// bodies with extensions and trailers, pipelined) are fed whole and at random
// split points, then mutated (byte flips, CR/LF/SP/NUL insertions, duplicated
// and deleted spans, truncations). Checks: no exception escapes; a split never
// changes the outcome; valid messages parse to what was generated; and the
// outcome agrees with llhttp, Node's own parser in strict mode, both ways,
// except for the deliberate differences listed in `deliberate()`.
import { pathToFileURL } from 'node:url';
import { Llhttp } from './fuzz-llhttp.js';
import { genMessages, type Rng, rng } from './fuzz-gen.js';
import { H1Parser, type H1ParserListener } from './parser.js';
import type { ProxyError } from '../errors.js';
import type { HeaderList, RequestHead, ResponseHead } from '../message/types.js';

/** One parsed message, normalised for comparison between parsers. */
export interface Msg {
  head: string;
  keepAlive: boolean;
  tunnel: boolean;
  body: string;
  trailers: string;
  ended: boolean;
}

export interface Outcome {
  messages: Msg[];
  error: string | undefined;
}

/** Our parser over `input` cut at `splits`, re-executing after each stop like a connection. */
class Ours implements H1ParserListener {
  messages: Msg[] = [];
  error: string | undefined;
  #body: Buffer[] = [];
  readonly parser: H1Parser;

  constructor(mode: 'request' | 'response') {
    this.parser = new H1Parser(mode, this);
  }
  onRequestHead(h: RequestHead): void {
    this.#body = [];
    this.messages.push({ head: `${h.method} ${h.target} ${h.version} ${h.headers.join('\u0000')}`, keepAlive: this.parser.keepAlive, tunnel: this.parser.tunnel, body: '', trailers: '', ended: false });
  }
  onResponseHead(h: ResponseHead): void {
    if (h.status < 200 && h.status !== 101) return; // interim heads: skipped on both sides
    this.#body = [];
    this.messages.push({ head: `${h.status} ${h.reason} ${h.version} ${h.headers.join('\u0000')}`, keepAlive: this.parser.keepAlive, tunnel: this.parser.tunnel, body: '', trailers: '', ended: false });
  }
  onBody(chunk: Buffer): boolean {
    this.#body.push(chunk);
    return true;
  }
  onMessageEnd(t: HeaderList | undefined): void {
    const m = this.messages[this.messages.length - 1];
    if (m === undefined) return;
    m.body = Buffer.concat(this.#body).toString('latin1');
    m.trailers = t?.join('\u0000') ?? '';
    m.ended = true;
  }
  onParseError(err: ProxyError, status: number): void {
    this.error = `${status} ${err.message}`;
  }
}

export function parseOurs(mode: 'request' | 'response', input: Buffer, splits: number[], eof: boolean): Outcome {
  const o = new Ours(mode);
  const p = o.parser;
  let start = 0;
  outer: for (const cut of [...splits, input.length]) {
    if (cut <= start) continue;
    const piece = input.subarray(start, cut);
    let off = 0;
    while (off < piece.length && o.error === undefined) {
      off = p.execute(piece, off);
      if (p.tunneled) break outer;
    }
    if (o.error !== undefined) break;
    start = cut;
  }
  if (eof && o.error === undefined && !p.tunneled && !p.finish()) o.error = 'truncated';
  return { messages: o.messages, error: o.error };
}

function sameMsg(a: Msg, b: Msg): boolean {
  return a.head === b.head && a.ended === b.ended && (!a.ended || (a.body === b.body && a.trailers === b.trailers));
}

/** Why two outcomes differ, or undefined when they agree. */
function differ(ours: Outcome, theirs: Outcome): string | undefined {
  const n = Math.max(ours.messages.length, theirs.messages.length);
  for (let i = 0; i < n; i++) {
    const a = ours.messages[i];
    const b = theirs.messages[i];
    if (a === undefined || b === undefined) {
      // A head one parser finished and the other refused: the refusal decides below.
      if ((a === undefined && ours.error !== undefined) || (b === undefined && theirs.error !== undefined)) break;
      return `message count ${ours.messages.length} vs ${theirs.messages.length}`;
    }
    // A 101 switches protocols for us whatever its fields say; llhttp needs an Upgrade field. Both stop reading HTTP.
    if (a.tunnel || b.tunnel) return a.head === b.head && (a.tunnel === b.tunnel || a.head.startsWith('101 ')) ? undefined : `tunnel ${a.tunnel} vs ${b.tunnel}`;
    if (a.keepAlive !== b.keepAlive && a.head === b.head) return 'keep-alive';
    if (!sameMsg(a, b)) {
      if ((ours.error !== undefined || theirs.error !== undefined) && (!a.ended || !b.ended) && a.head === b.head) break;
      return `message ${i}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
    }
    // After a message that closes the connection, llhttp refuses more data; a server of ours stops reading.
    if (!a.keepAlive && a.ended) return undefined;
  }
  if ((ours.error === undefined) !== (theirs.error === undefined)) return `error: ours ${ours.error} / llhttp ${theirs.error}`;
  return undefined;
}

/** Differences we mean to have, by the reason llhttp gives and the input. */
function deliberate(_input: Buffer, ours: Outcome, theirs: Outcome, mode: 'request' | 'response', ll: Llhttp): string | undefined {
  // On a head cut short, each parser may refuse at a different byte: completing the
  // head (CRLFCRLF) must make the other refuse too.
  if ((ours.error === undefined) !== (theirs.error === undefined)) {
    const done = Buffer.concat([_input, Buffer.from('\r\n\r\n')]);
    const o2 = parseOurs(mode, done, [], false);
    const t2 = ll.parse(done, false);
    if (o2.error !== undefined && t2.error !== undefined && ours.messages.length === theirs.messages.length) return 'refused at a different byte of an incomplete head';
  }
  // Extension methods are tokens we forward; llhttp knows a fixed list (and refuses a prefix of none of them early).
  if (ours.error === undefined && theirs.error?.startsWith('HPE_INVALID_METHOD')) return 'extension method';
  // A request Transfer-Encoding listing anything but chunked (e.g. "gzip, chunked", or two fields) is
  // refused: the coding would be lost once we decode the chunks. llhttp takes any list ending in chunked.
  if (theirs.error === undefined && ours.error?.endsWith('transfer-encoding other than chunked')) return 'request transfer-coding other than chunked';
  // llhttp reads "GET /x" (no version) as HTTP/0.9 with headers following; we refuse.
  if (ours.error?.endsWith('(HTTP/0.9)')) return 'HTTP/0.9 request line';
  // llhttp skips any CR and LF before a request line; we skip CRLF pairs only (a bare CR or LF is refused everywhere).
  if (theirs.error === undefined && (ours.error?.endsWith('bare LF') || ours.error?.endsWith('bare CR'))) return 'stray CR or LF before a start line';
  // llhttp treats an HTTP/1.0 interim response as closing the connection; we read the final response after it.
  if (ours.error === undefined && theirs.error?.startsWith('HPE_CLOSED_CONNECTION') && /HTTP\/1\.0 1\d\d/.test(_input.toString('latin1'))) return 'HTTP/1.0 interim response';
  if (theirs.error !== undefined) return undefined;
  // The rest: where llhttp is more lenient than we mean to be.
  if (ours.error?.endsWith('several spaces in the request line')) return 'several spaces in the request line';
  if (ours.error?.endsWith('invalid reason phrase')) return 'control characters in a reason phrase';
  if (ours.error?.endsWith('chunked applied more than once')) return 'response chunked twice';
  if (ours.error?.endsWith('invalid status code')) return 'status code below 100';
  if (ours.error?.endsWith('invalid request-target')) return 'request-target forms read more strictly';
  // llhttp also takes RTSP/ and ICE/ status lines, so it waits on a prefix we refuse at once.
  if (ours.error?.endsWith('invalid status line')) return 'status line prefix refused early';
  // llhttp takes ";=v", ";n=" and values like +"q"; we take RFC 9112's grammar without BWS.
  if (ours.error?.endsWith('invalid chunk extension')) return 'chunk extensions outside the grammar';
  return undefined;
}

export interface FuzzStats {
  inputs: number;
  valid: number;
  mutated: number;
  splitMismatches: number;
  generatedMismatches: number;
  differences: number;
  deliberate: Record<string, number>;
  samples: string[];
  exceptions: number;
  ms: number;
}

export function fuzz(iterations: number, seed: number, mode: 'request' | 'response' | 'both' = 'both', timeLimitMs = Infinity): FuzzStats {
  const r = rng(seed);
  const stats: FuzzStats = { inputs: 0, valid: 0, mutated: 0, splitMismatches: 0, generatedMismatches: 0, differences: 0, deliberate: {}, samples: [], exceptions: 0, ms: 0 };
  const ll = { request: new Llhttp('request'), response: new Llhttp('response') };
  const t0 = performance.now();
  const note = (kind: string, input: Buffer, detail: string): void => {
    if (stats.samples.length < 20) stats.samples.push(`${kind}: ${JSON.stringify(input.toString('latin1'))} → ${detail}`);
  };
  for (let it = 0; it < iterations; it++) {
    if ((it & 255) === 0 && performance.now() - t0 > timeLimitMs) break;
    const m: 'request' | 'response' = mode === 'both' ? (r.int(4) === 0 ? 'response' : 'request') : mode;
    const gen = genMessages(r, m);
    const mutate = r.int(3) !== 0;
    const input = mutate ? mutateBytes(r, gen.bytes) : gen.bytes;
    // Responses without a length end at EOF; requests never do.
    const eof = m === 'response' && (r.int(2) === 0 || gen.untilClose);
    stats.inputs++;
    if (mutate) stats.mutated++;
    else stats.valid++;
    try {
      const whole = parseOurs(m, input, [], eof);
      const split = parseOurs(m, input, randomSplits(r, input.length), eof);
      // The same messages and the same refusal status (the words may differ: a split can reveal a bare CR earlier).
      if (JSON.stringify(whole.messages) !== JSON.stringify(split.messages) || whole.error?.slice(0, 3) !== split.error?.slice(0, 3)) {
        stats.splitMismatches++;
        note('split', input, `${JSON.stringify(whole)} vs ${JSON.stringify(split)}`);
      }
      if (!mutate && (whole.error !== undefined || whole.messages.length !== gen.expected.length || whole.messages.some((x, i) => x.head !== gen.expected[i]!.head || x.body !== gen.expected[i]!.body || x.trailers !== gen.expected[i]!.trailers))) {
        stats.generatedMismatches++;
        note('generated', input, JSON.stringify(whole));
      }
      const theirs = ll[m].parse(input, eof);
      const d = differ(whole, theirs);
      if (d === 'keep-alive') {
        // HTTP/1.0 with Transfer-Encoding closes after the message (RFC 9112 §6.1), llhttp keeps it;
        // "Connection: keep-alive<TAB>": we trim OWS around tokens, llhttp does not.
        const k = 'keep-alive decision (HTTP/1.0 + Transfer-Encoding; OWS around Connection tokens)';
        stats.deliberate[k] = (stats.deliberate[k] ?? 0) + 1;
      } else if (d !== undefined) {
        const why = deliberate(input, whole, theirs, m, ll[m]);
        if (why !== undefined) stats.deliberate[why] = (stats.deliberate[why] ?? 0) + 1;
        else {
          stats.differences++;
          note(`differs (${m})`, input, d);
        }
      }
    } catch (e) {
      stats.exceptions++;
      note('exception', input, String((e as Error).stack));
    }
  }
  stats.ms = performance.now() - t0;
  return stats;
}

function randomSplits(r: Rng, len: number): number[] {
  const n = 1 + r.int(3);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(1 + r.int(Math.max(1, len - 1)));
  return out.sort((a, b) => a - b);
}

const INTERESTING = [0, 9, 10, 13, 32, 34, 44, 58, 59, 61, 0x7f, 0x80, 0xff, 0x30, 0x61, 0x46, 0x2d, 0x2b];

function mutateBytes(r: Rng, src: Buffer): Buffer {
  let b = Buffer.from(src);
  const ops = 1 + r.int(3);
  for (let k = 0; k < ops && b.length > 0; k++) {
    const at = r.int(b.length);
    const byte = r.int(4) === 0 ? r.int(256) : INTERESTING[r.int(INTERESTING.length)]!;
    switch (r.int(6)) {
      case 0:
        b[at] = byte;
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, at), Buffer.of(byte), b.subarray(at)]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + r.int(4))]);
        break;
      case 3: {
        const len = 1 + r.int(Math.min(40, b.length - at));
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 4:
        b = b.subarray(0, at);
        break;
      default: {
        const pair = r.int(2) === 0 ? '\r\n' : r.int(2) === 0 ? '\n' : '\r';
        b = Buffer.concat([b.subarray(0, at), Buffer.from(pair), b.subarray(at)]);
      }
    }
  }
  return b;
}

function main(argv: string[]): void {
  const arg = (name: string, dflt: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
  };
  const iterations = Number(arg('iterations', '100000'));
  const seed = Number(arg('seed', '42'));
  const mode = arg('mode', 'both') as 'request' | 'response' | 'both';
  const s = fuzz(iterations, seed, mode);
  const rate = Math.round(s.inputs / (s.ms / 1000));
  process.stdout.write(
    `inputs ${s.inputs} (valid ${s.valid}, mutated ${s.mutated}) in ${(s.ms / 1000).toFixed(1)} s = ${rate} inputs/s\n` +
      `split mismatches ${s.splitMismatches}, generated mismatches ${s.generatedMismatches}, exceptions ${s.exceptions}, differences from llhttp ${s.differences}\n` +
      `deliberate differences ${JSON.stringify(s.deliberate)}\n${s.samples.join('\n')}\n`,
  );
  process.exitCode = s.splitMismatches + s.generatedMismatches + s.exceptions + s.differences > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
