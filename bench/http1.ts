// Just enough HTTP/1.1 for the bench's own clients: a GET request and an incremental reader of
// the responses that come back on a keep-alive connection (Content-Length or chunked bodies).
// The proxy may change framing once it parses HTTP, so chunked is read as well as lengths.

export class HttpParseError extends Error {
  readonly code = 'BENCH_BAD_RESPONSE';
}

export function getRequest(host: string, path = '/'): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: mesh-bench\r\n\r\n`, 'latin1');
}

type Phase = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'trailers';

const MAX_HEAD = 64 * 1024;

/** Feed it what the socket reads; it calls `onResponse(status)` once per complete response. */
export class ResponseReader {
  #pending: Buffer | undefined;
  #phase: Phase = 'head';
  #status = 0;
  #left = 0;

  constructor(private readonly onResponse: (status: number) => void) {}

  /** Throws HttpParseError on bytes that are not an HTTP/1.1 response stream. `chunk` is not kept. */
  push(chunk: Buffer): void {
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    let off = 0;
    while (off < buf.length) {
      const next = this.#step(buf, off);
      if (next < 0) {
        // Not enough bytes to go on: keep the rest for the next chunk.
        if (buf.length - off > MAX_HEAD) throw new HttpParseError('response head or chunk line too long');
        // A copy: the caller may reuse the buffer it handed in.
        this.#pending = Buffer.from(buf.subarray(off));
        return;
      }
      off = next;
    }
  }

  /** True between responses, i.e. when the connection may be closed without losing one. */
  idle(): boolean {
    return this.#phase === 'head' && this.#pending === undefined;
  }

  /** Consumes from `off`; returns the new offset, or -1 when more bytes are needed. */
  #step(buf: Buffer, off: number): number {
    switch (this.#phase) {
      case 'head': {
        const end = buf.indexOf('\r\n\r\n', off, 'latin1');
        if (end < 0) return -1;
        this.#head(buf.toString('latin1', off, end));
        return end + 4;
      }
      case 'body':
      case 'chunk-data': {
        const take = Math.min(this.#left, buf.length - off);
        this.#left -= take;
        if (this.#left === 0) {
          if (this.#phase === 'body') this.#complete();
          else this.#phase = 'chunk-size';
        }
        return off + take;
      }
      case 'chunk-size': {
        const eol = buf.indexOf('\r\n', off, 'latin1');
        if (eol < 0) return -1;
        const size = parseInt(buf.toString('latin1', off, eol).split(';')[0]!, 16);
        if (!Number.isFinite(size) || size < 0) throw new HttpParseError('bad chunk size');
        if (size === 0) this.#phase = 'trailers';
        else {
          this.#phase = 'chunk-data';
          this.#left = size + 2; // the chunk and its CRLF
        }
        return eol + 2;
      }
      case 'trailers': {
        const eol = buf.indexOf('\r\n', off, 'latin1');
        if (eol < 0) return -1;
        if (eol === off) this.#complete();
        return eol + 2;
      }
    }
  }

  #head(head: string): void {
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) throw new HttpParseError(`not an HTTP/1.x status line: ${JSON.stringify(head.slice(0, 40))}`);
    this.#status = Number(m[1]);
    // Interim responses (100 Continue) are followed by the real one.
    if (this.#status >= 100 && this.#status < 200) return;
    if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
      this.#phase = 'chunk-size';
      return;
    }
    const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (len) {
      this.#left = Number(len[1]);
      if (this.#left === 0) this.#complete();
      else this.#phase = 'body';
      return;
    }
    if (this.#status === 204 || this.#status === 304) {
      this.#complete();
      return;
    }
    // A body delimited by close cannot be told apart from the next response on a keep-alive
    // connection; the bench's server never sends one, so seeing it means something is wrong.
    throw new HttpParseError(`response ${this.#status} has neither Content-Length nor chunked encoding`);
  }

  #complete(): void {
    this.#phase = 'head';
    this.onResponse(this.#status);
  }
}
