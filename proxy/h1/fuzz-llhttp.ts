// llhttp, Node's own HTTP/1 parser, driven directly through its binding (the
// one node:http uses) in strict mode, for the fuzzer's differential check.
// Not for production: process.binding is deprecated, fine in a test tool.
import type { Msg, Outcome } from './fuzz.js';

interface Binding {
  HTTPParser: {
    new (): NativeParser;
    REQUEST: number;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnExecute: number;
    kLenientNone: number;
  };
  methods: string[];
}
interface NativeParser {
  [k: number]: unknown;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | (Error & { code: string; reason: string });
  finish(): undefined | number | (Error & { code: string; reason: string });
}

const binding: Binding = (() => {
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    return (process as unknown as { binding(name: string): Binding }).binding('http_parser');
  } finally {
    process.noDeprecation = quiet;
  }
})();
const { HTTPParser, methods } = binding;
export const llhttpMethods = new Set(methods);

export class Llhttp {
  #p: NativeParser = new HTTPParser();
  #inBody = false;
  readonly #type: number;
  #messages: Msg[] = [];
  #headers: string[] = [];
  #url = '';
  #body: Buffer[] = [];
  #skip = false;
  #upgrade = false;

  constructor(mode: 'request' | 'response') {
    this.#type = mode === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE;
  }

  /** A fresh native parser per input: a reused one kept state across initialize() after some errors. */
  #fresh(): NativeParser {
    const p = new HTTPParser();
    p[HTTPParser.kOnHeaders] = (h: string[], url: string): void => {
      this.#headers.push(...h);
      // Node flushes the URL again with trailers: only a head's counts.
      if (url && !this.#inBody) this.#url += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined, status: number | undefined, reason: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
      const h = headers ?? this.#headers;
      const u = url ?? this.#url;
      this.#headers = [];
      this.#url = '';
      this.#body = [];
      this.#inBody = true;
      const version = major * 10 + minor;
      this.#skip = status !== undefined && status < 200 && status !== 101;
      if (!this.#skip) {
        const head = this.#type === HTTPParser.REQUEST ? `${methods[method!]} ${u} ${version} ${h.join('\u0000')}` : `${status} ${reason ?? ''} ${version} ${h.join('\u0000')}`;
        this.#messages.push({ head, keepAlive, tunnel: upgrade, body: '', trailers: '', ended: false });
      }
      if (upgrade) this.#upgrade = true;
      return 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer): void => {
      this.#body.push(Buffer.from(b));
    };
    p[HTTPParser.kOnMessageComplete] = (): void => {
      this.#inBody = false;
      this.#url = '';
      if (this.#skip) {
        this.#skip = false;
        this.#headers = [];
        return;
      }
      const m = this.#messages[this.#messages.length - 1];
      if (m === undefined) return;
      m.body = Buffer.concat(this.#body).toString('latin1');
      m.trailers = this.#headers.join('\u0000');
      this.#headers = [];
      m.ended = true;
    };
    p[HTTPParser.kOnExecute] = (): void => {};
    return p;
  }

  parse(input: Buffer, eof: boolean): Outcome {
    this.#messages = [];
    this.#headers = [];
    this.#url = '';
    this.#body = [];
    this.#skip = false;
    this.#upgrade = false;
    this.#inBody = false;
    this.#p = this.#fresh();
    this.#p.initialize(this.#type, {}, 65536, HTTPParser.kLenientNone);
    let error: string | undefined;
    const r = this.#p.execute(input);
    if (typeof r === 'object' && r !== null) error = `${r.code} ${r.reason}`;
    else if (eof && !this.#upgrade) {
      const f = this.#p.finish();
      if (f !== undefined && typeof f !== 'number') error = `${f.code} ${f.reason}`;
    }
    // An upgrade's bytes after the head are not HTTP: parsing stops there, as ours does.
    return { messages: this.#messages, error };
  }
}
