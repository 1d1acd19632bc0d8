// The connection header a client proxy writes first thing inside the mutual
// TLS session, so the server proxy knows where the stream goes and what it
// carries without detecting a protocol a second time.
//
//   "MESH"  version=1  length(u16 BE)  protocol(u8)  port(u16 BE)  nameLength(u8)  name
//
// `name` is reserved for gateways (an authority to route by); a sidecar sends
// none. Fixed binary fields keep encoding and parsing free of JSON and copies.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { sealedOf } from './sealed.js';

/**
 * 'unknown': the client proxy opened this session before its client spoke
 * (server-speaks-first detection); the server proxy detects on what comes,
 * racing the app's first bytes. Appended, so the older values keep their bytes.
 * 'tunnel': an HTTP/2 session whose streams are CONNECTs, each one opaque TCP
 * connection to the workload's port named in its :authority (proxy/tunnel.ts);
 * the header's port is the one the session was dialled on.
 */
export type SessionProtocol = 'opaque' | 'http1' | 'h2' | 'unknown' | 'tunnel';

export interface TransportHeader {
  protocol: SessionProtocol;
  /** The port the client dialled: the server proxy forwards to it on its own workload. */
  port: number;
  name?: string;
}

const MAGIC = Buffer.from('MESH', 'latin1');
const VERSION = 1;
const FIXED = MAGIC.length + 1 + 2; // magic, version, length
const BODY_MIN = 1 + 2 + 1;
export const HEADER_MAX_BYTES = FIXED + BODY_MIN + 255;
const protocols: readonly SessionProtocol[] = ['opaque', 'http1', 'h2', 'unknown', 'tunnel'];

export function encodeHeader(h: TransportHeader): Buffer {
  const name = Buffer.from(h.name ?? '', 'latin1');
  if (name.length > 255) throw new RangeError(`transport header name is ${name.length} bytes, at most 255`);
  if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) throw new RangeError(`transport header port ${h.port} is not 1-65535`);
  const out = Buffer.allocUnsafe(FIXED + BODY_MIN + name.length);
  MAGIC.copy(out, 0);
  out[4] = VERSION;
  out.writeUInt16BE(BODY_MIN + name.length, 5);
  out[7] = protocols.indexOf(h.protocol);
  out.writeUInt16BE(h.port, 8);
  out[10] = name.length;
  name.copy(out, 11);
  return out;
}

export type Parsed =
  | { kind: 'need-more' }
  | { kind: 'header'; header: TransportHeader; length: number }
  | { kind: 'invalid'; reason: string };

const NEED_MORE: Parsed = { kind: 'need-more' };

/** Judges a prefix of the decrypted stream; `length` is how many bytes the header took. */
export function parseHeader(buf: Buffer): Parsed {
  const magic = Math.min(buf.length, MAGIC.length);
  if (buf.compare(MAGIC, 0, magic, 0, magic) !== 0) return { kind: 'invalid', reason: 'no transport header (bad magic)' };
  if (buf.length < FIXED) return NEED_MORE;
  if (buf[4] !== VERSION) return { kind: 'invalid', reason: `transport header version ${buf[4]} is not ${VERSION}` };
  const bodyLength = buf.readUInt16BE(5);
  if (bodyLength < BODY_MIN || FIXED + bodyLength > HEADER_MAX_BYTES) return { kind: 'invalid', reason: `transport header length ${bodyLength} out of range` };
  if (buf.length < FIXED + bodyLength) return NEED_MORE;
  const protocol = protocols[buf[7]!];
  if (protocol === undefined) return { kind: 'invalid', reason: `unknown session protocol ${buf[7]}` };
  const port = buf.readUInt16BE(8);
  if (port === 0) return { kind: 'invalid', reason: 'transport header port 0' };
  const nameLength = buf[10]!;
  if (BODY_MIN + nameLength !== bodyLength) return { kind: 'invalid', reason: 'transport header name length does not match its length' };
  const header: TransportHeader = { protocol, port };
  if (nameLength > 0) header.name = buf.toString('latin1', 11, 11 + nameLength);
  return { kind: 'header', header, length: FIXED + bodyLength };
}

export type HeaderResult = { kind: 'header'; header: TransportHeader } | { kind: 'invalid'; reason: string } | { kind: 'timeout' } | { kind: 'closed' };

/**
 * Reads the header off `socket` (a terminated TLS session, or a sealed one's TCP socket),
 * puts back every byte after it and leaves the socket paused for whoever serves the session.
 * On a TLS socket 'readable' rather than 'data', so the bytes after the header can be
 * unshifted (see detect/peek.ts for why); on a sealed one the plaintext comes from its channel
 * (as views, copied here) and the rest goes back to the channel.
 */
export function readHeader(socket: Socket, timeoutMs: number): Promise<HeaderResult> {
  return new Promise((resolve) => {
    let held: Buffer | undefined;
    let done = false;
    const take = (chunk: Buffer): void => {
      held = held === undefined ? Buffer.from(chunk) : Buffer.concat([held, chunk]);
      const p = parseHeader(held);
      // parseHeader bounds the length it waits for (HEADER_MAX_BYTES), so this cannot wait forever.
      if (p.kind === 'need-more') return;
      if (p.kind === 'invalid') return finish(p);
      finish({ kind: 'header', header: p.header }, held.subarray(p.length));
    };
    const source = sealedOf(socket);
    const onReadable = (): void => {
      if (socket.readableLength === 0) return finish({ kind: 'closed' });
      let chunk: Buffer | null;
      while (!done && (chunk = socket.read(socket.readableLength) as Buffer | null) !== null) take(chunk);
    };
    const finish = (r: HeaderResult, rest?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('close', onClose);
      if (source !== undefined) {
        // Records already read but not yet opened are held for the session's reader.
        socket.removeListener('end', onClose);
        source.listen(null);
        socket.pause();
        if (rest !== undefined) source.unshift(rest);
        return resolve(r);
      }
      socket.removeListener('readable', onReadable);
      if (rest !== undefined && rest.length > 0 && !socket.destroyed && !socket.readableEnded) socket.unshift(rest);
      socket.pause();
      // As in detect/peek.ts: removing 'readable' resumes flowing on the next tick; settle after it.
      process.nextTick(() => {
        socket.pause();
        resolve(r);
      });
    };
    const onClose = (): void => finish({ kind: 'closed' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    socket.once('close', onClose);
    if (source === undefined) return void socket.on('readable', onReadable);
    socket.once('end', onClose);
    source.listen(take);
    socket.resume();
  });
}
