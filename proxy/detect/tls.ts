// Recognises a TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) and reads the two
// extensions routing needs: server_name (RFC 6066 §3) and ALPN (RFC 7301 §3.1).
// Running out of bytes is "need more"; a length that does not fit where the peer put
// it, or a field no TLS stack would send, is "not TLS". The first is decided only by
// what has not arrived yet, the second only by what has, so a verdict never changes
// as more bytes arrive.
import { Buffer } from 'node:buffer';

export type ClientHello =
  | { kind: 'need-more' }
  | { kind: 'not-tls' }
  | { kind: 'client-hello'; sni?: string; alpn: string[] };

const NEED_MORE: ClientHello = Object.freeze({ kind: 'need-more' });
const NOT_TLS: ClientHello = Object.freeze({ kind: 'not-tls' });

export const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_FRAGMENT = 1 << 14; // RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes
// legacy_version, random, empty session id, one cipher suite, one compression method.
const MIN_HELLO_BODY = 2 + 32 + 1 + 2 + 2 + 1 + 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST = 0;

export function parseClientHello(buf: Buffer): ClientHello {
  const message = handshakeMessage(buf);
  return Buffer.isBuffer(message) ? parseMessage(message) : message;
}

/**
 * The first handshake message, reassembled when it spans records (large hellos, or
 * stacks that fragment on purpose). Zero-copy when it sits in one record, the usual case.
 */
function handshakeMessage(buf: Buffer): Buffer | ClientHello {
  let first: Buffer | undefined;
  let parts: Buffer[] | undefined;
  let have = 0;
  let want = 0; // header + body length, once the 4-byte handshake header is in
  for (let off = 0; ; ) {
    // Judge each record-header byte as soon as it is here: a stream that does not
    // start like TLS is rejected on its first byte.
    if (off >= buf.length) return NEED_MORE;
    if (buf[off] !== RECORD_HANDSHAKE) return NOT_TLS; // RFC 8446 §5.1: no interleaving before the hello ends
    if (off + 1 >= buf.length) return NEED_MORE;
    if (buf[off + 1] !== 3) return NOT_TLS;
    if (off + 5 > buf.length) return NEED_MORE;
    const length = buf.readUInt16BE(off + 3);
    if (length === 0 || length > MAX_FRAGMENT) return NOT_TLS; // empty handshake fragments are forbidden
    const start = off + 5;
    const fragment = buf.subarray(start, Math.min(start + length, buf.length));
    if (fragment.length > 0) {
      if (first === undefined) first = fragment;
      else (parts ??= [first]).push(fragment);
      have += fragment.length;
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
    }
    if (want === 0 && have >= 4) {
      const header = parts === undefined ? first! : Buffer.concat(parts, 4);
      const body = header.readUIntBE(1, 3);
      if (body < MIN_HELLO_BODY) return NOT_TLS;
      want = 4 + body;
    }
    if (want > 0 && have >= want) return parts === undefined ? first!.subarray(0, want) : Buffer.concat(parts, want);
    if (start + length > buf.length) return NEED_MORE;
    off = start + length;
  }
}

/** A complete ClientHello message (header included): every length must fit exactly. */
function parseMessage(msg: Buffer): ClientHello {
  const c = new Cursor(msg, 4, msg.length);
  if (c.u8() !== 3 || !c.skip(1 + 32)) return NOT_TLS; // legacy_version 3.x, random
  const session = c.vector(1);
  if (session === undefined || session.size > 32) return NOT_TLS;
  const suites = c.vector(2);
  if (suites === undefined || suites.size < 2 || suites.size % 2 !== 0) return NOT_TLS;
  const compression = c.vector(1);
  if (compression === undefined || compression.size < 1) return NOT_TLS;
  // Before TLS 1.3 a hello may end right here, without an extensions block.
  if (c.done) return { kind: 'client-hello', alpn: [] };
  const extensions = c.vector(2);
  if (extensions === undefined || !c.done) return NOT_TLS;

  let sni: string | undefined;
  let alpn: string[] = [];
  let seenSni = false;
  let seenAlpn = false;
  while (!extensions.done) {
    const type = extensions.u16();
    const data = extensions.vector(2);
    if (data === undefined) return NOT_TLS;
    // A repeated extension is forbidden (RFC 8446 §4.2) and would leave it ambiguous
    // which name the connection is for.
    if (type === EXT_SERVER_NAME) {
      const name = seenSni ? null : serverName(data);
      if (name === null) return NOT_TLS;
      sni = name;
      seenSni = true;
    } else if (type === EXT_ALPN) {
      const names = seenAlpn ? null : protocols(data);
      if (names === null) return NOT_TLS;
      alpn = names;
      seenAlpn = true;
    }
  }
  return sni === undefined ? { kind: 'client-hello', alpn } : { kind: 'client-hello', sni, alpn };
}

/** ServerNameList → the host_name, undefined if the list names none, null if malformed. */
function serverName(data: Cursor): string | undefined | null {
  const list = data.vector(2);
  if (list === undefined || !data.done || list.done) return null;
  let host: string | undefined;
  while (!list.done) {
    const type = list.u8();
    const name = list.vector(2);
    if (name === undefined || name.done) return null;
    if (type !== NAME_TYPE_HOST) continue;
    if (host !== undefined) return null; // RFC 6066: one name per type
    host = name.hostName();
    if (host === undefined) return null;
  }
  return host;
}

/** ProtocolNameList → the names in the client's order of preference, null if malformed. */
function protocols(data: Cursor): string[] | null {
  const list = data.vector(2);
  if (list === undefined || !data.done || list.done) return null;
  const names: string[] = [];
  while (!list.done) {
    const name = list.vector(1);
    if (name === undefined || name.done) return null; // empty names are not allowed
    names.push(name.latin1());
  }
  return names;
}

/** A bounds-checked window [pos, end) of a fully received message; reads past `end` fail. */
class Cursor {
  constructor(private readonly buf: Buffer, private pos: number, private readonly end: number) {}

  get done(): boolean {
    return this.pos >= this.end;
  }
  get size(): number {
    return this.end - this.pos;
  }
  u8(): number {
    return this.pos < this.end ? this.buf[this.pos++]! : -1;
  }
  u16(): number {
    if (this.pos + 2 > this.end) return -1;
    this.pos += 2;
    return this.buf.readUInt16BE(this.pos - 2);
  }
  skip(n: number): boolean {
    this.pos += n;
    return this.pos <= this.end;
  }
  /** Splits off a vector whose length comes in the next `width` bytes. */
  vector(width: 1 | 2): Cursor | undefined {
    const n = width === 1 ? this.u8() : this.u16();
    if (n < 0 || this.pos + n > this.end) return undefined;
    this.pos += n;
    return new Cursor(this.buf, this.pos - n, this.pos);
  }
  latin1(): string {
    return this.buf.toString('latin1', this.pos, this.end);
  }
  /**
   * The bytes as a lower-cased host name (names compare case-insensitively), or
   * undefined if any byte is not visible ASCII: RFC 6066 names are ASCII, and a NUL
   * or control byte is the classic way to make two parties read different names.
   */
  hostName(): string | undefined {
    for (let i = this.pos; i < this.end; i++) {
      const b = this.buf[i]!;
      if (b < 0x21 || b > 0x7e) return undefined;
    }
    return this.latin1().toLowerCase();
  }
}
