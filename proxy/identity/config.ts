// The MESH_PROXY_IDENTITY_* variables, read by proxy/config.ts. Identity is
// on exactly when MESH_PROXY_IDENTITY_URL is set; then the rest must be too,
// and the trust anchors are read and parsed here, so a bad file stops start-up
// naming its variable instead of failing on the first certify.
import { accessSync, constants, readFileSync } from 'node:fs';
// Light modules only: this runs at every start-up, identity on or off.
import { parseIdentityName } from '../../ca/identity.js';
import { certificatesFromPem } from '../../ca/pem.js';
import { identityServerName } from '../../controller/identity/names.js';
import { ConfigError } from '../config.js';

export interface IdentityConfig {
  /** `https://host:port` of the identity service. */
  url: string;
  /** This workload's name, `<sa>.<ns>.serviceaccount.identity.<trust-domain>`. */
  name: string;
  /** Service-account token; re-read for every request, since tokens rotate. */
  tokenFile: string;
  /** PEM of the trust anchor(s), read once at start-up. */
  trustAnchorsPem: string;
  /** The identity service's TLS name; defaults to the one controller/identity gives itself. */
  serverName: string;
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') throw new ConfigError(name, 'must be set when MESH_PROXY_IDENTITY_URL is');
  return raw;
}

function httpsUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not a URL (e.g. https://mesh-identity.mesh.svc:8080)`);
  }
  if (u.protocol !== 'https:') throw new ConfigError(name, `"${raw}" must be an https:// URL`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '' || u.username !== '') {
    throw new ConfigError(name, `"${raw}" must be https://host:port, without a path`);
  }
  return `https://${u.host}`;
}

function readableFile(name: string, path: string): string {
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw new ConfigError(name, `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return path;
}

function anchors(name: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(readableFile(name, path), 'utf8');
    certificatesFromPem(text, path);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(name, `${path} holds no PEM certificate (${(e as Error).message})`);
  }
  return text;
}

/** undefined when identity is off. */
export function loadIdentityConfig(env: Env): IdentityConfig | undefined {
  const rawUrl = env.MESH_PROXY_IDENTITY_URL?.trim();
  if (rawUrl === undefined || rawUrl === '') return undefined;
  const url = httpsUrl('MESH_PROXY_IDENTITY_URL', rawUrl);
  const name = required(env, 'MESH_PROXY_IDENTITY_NAME');
  let trustDomain: string;
  try {
    trustDomain = parseIdentityName(name).trustDomain;
  } catch (e) {
    throw new ConfigError('MESH_PROXY_IDENTITY_NAME', (e as Error).message);
  }
  const tokenFile = readableFile('MESH_PROXY_IDENTITY_TOKEN_FILE', required(env, 'MESH_PROXY_IDENTITY_TOKEN_FILE'));
  const trustAnchorsPem = anchors('MESH_PROXY_IDENTITY_TRUST_ANCHORS', required(env, 'MESH_PROXY_IDENTITY_TRUST_ANCHORS'));
  const serverName = env.MESH_PROXY_IDENTITY_SERVER_NAME?.trim() || identityServerName(trustDomain);
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(serverName)) {
    throw new ConfigError('MESH_PROXY_IDENTITY_SERVER_NAME', `"${serverName}" is not a lowercase DNS name`);
  }
  return { url, name, tokenFile, trustAnchorsPem, serverName };
}
