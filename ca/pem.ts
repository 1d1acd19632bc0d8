// PEM (RFC 7468) in and out. Strict enough to refuse junk with a useful message,
// lenient about what people paste: CRLF, surrounding text, several blocks.
import { CaError } from './errors.js';

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, '');
    // Buffer's decoder skips bad characters silently; a corrupted file must not pass.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) continue;
    blocks.push({ label: m[1]!, der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  return blocks;
}

export function toPem(label: string, der: Uint8Array | ArrayBuffer): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** Every CERTIFICATE block in `text`; `what` names the input in the error ("the trust anchor"). */
export function certificatesFromPem(text: string, what: string): Uint8Array[] {
  const certs = pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
  if (certs.length === 0) {
    throw new CaError('MESH_CA_BAD_PEM', `${what}: no PEM "CERTIFICATE" block found (expected -----BEGIN CERTIFICATE-----)`);
  }
  return certs;
}
