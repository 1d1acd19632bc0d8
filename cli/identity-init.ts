// `mesh identity init`: the mesh's CA, made (trust anchor → issuer) or brought
// (validated), plus the key that signs off-Kubernetes service-account tokens;
// written to a directory (-o pem) or printed as Kubernetes objects (-o yaml).
import { Command, Option } from 'commander';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  certificatesFromPem,
  createIssuer,
  createTokenKey,
  createTrustAnchor,
  importTokenSigningKey,
  toPem,
  validateIssuer,
} from '../ca/index.js';
import { identityFiles } from '../controller/identity/files.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { existingFiles, modeString, writeFiles, type FileToWrite } from './identity-files.js';
import { identityManifests, type IdentityMaterial } from './identity-manifests.js';
import { parseChoice, parseDuration } from './flags.js';

export interface BringYourOwnCa {
  anchorFile: string;
  issuerCertFile: string;
  issuerKeyFile: string;
}

export interface IdentityInitOptions {
  trustDomain: string;
  /** Where -o pem writes. */
  dir: string;
  anchorValidityMs: number;
  issuerValidityMs: number;
  output: 'pem' | 'yaml';
  /** Replace the CA files of an existing directory. */
  force: boolean;
  /** Replace the token key too (every token it signed stops working). */
  rotateTokenKey: boolean;
  byo?: BringYourOwnCa;
  /** -o yaml: where the objects go. */
  namespace: string;
}

export interface IdentityInitDeps {
  now(): Date;
}

export const defaults = {
  trustDomain: 'cluster.local',
  dir: 'mesh-identity',
  anchorValidity: '87600h',
  issuerValidity: '8760h',
  output: 'pem',
  namespace: 'mesh',
} as const;

const COMMAND = 'mesh identity init';
const DAY_MS = 86_400_000;
const ALL_FILES = Object.values(identityFiles);
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const commonName = (pem: string): string => /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(pem).subject)?.[1] ?? '(no CN)';

async function makeCa(o: IdentityInitOptions, now: Date, out: Out): Promise<IdentityMaterial> {
  const { trustDomain } = o;
  const anchor = await createTrustAnchor({ trustDomain, validityDays: o.anchorValidityMs / DAY_MS, now });
  const issuer = await createIssuer(anchor, { trustDomain, validityDays: o.issuerValidityMs / DAY_MS, now });
  const fingerprint = new X509Certificate(anchor.certPem).fingerprint256;
  out.stderr(`trust-anchor/${commonName(anchor.certPem)} created (expires ${iso(anchor.notAfter)}, sha256 ${fingerprint})\n`);
  // As with Linkerd's own install: the anchor key is not kept. To keep a root
  // offline and make issuers from it later, bring your own CA instead.
  out.stderr('trust-anchor key discarded: a new issuer will need a new anchor, or bring your own CA (--anchor, --issuer-cert, --issuer-key)\n');
  out.stderr(`issuer/${commonName(issuer.certPem)} created (expires ${iso(issuer.notAfter)})\n`);
  return { anchorPem: anchor.certPem, issuerCertPem: issuer.certPem, issuerKeyPem: issuer.keyPem };
}

async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

async function bringOwnCa(byo: BringYourOwnCa, now: Date, out: Out): Promise<IdentityMaterial> {
  // In flag order, so the error for several unreadable files is always the same one.
  const anchorPem = await readFlagFile('--anchor', byo.anchorFile);
  const issuerCertPem = await readFlagFile('--issuer-cert', byo.issuerCertFile);
  const issuerKeyPem = await readFlagFile('--issuer-key', byo.issuerKeyFile);
  const checked = await validateIssuer({ anchorPem, issuerCertPem, issuerKeyPem, now });
  for (const warning of checked.warnings) out.stderr(`Warning: ${warning}\n`);
  out.stderr(
    `issuer/${commonName(checked.issuer.certPem)} validated (expires ${iso(checked.issuer.notAfter)}), ` +
      `signed by ${checked.anchor.subject} (sha256 ${checked.anchor.fingerprint256})\n`,
  );
  // Certificates re-encoded (text around the PEM blocks dropped, the issuer
  // alone); the key exactly as given: PKCS#8 or SEC1 both load.
  const anchors = certificatesFromPem(anchorPem, 'the trust anchor').map((der) => toPem('CERTIFICATE', der));
  return { anchorPem: anchors.join(''), issuerCertPem: checked.issuer.certPem, issuerKeyPem };
}

/** The token key to write: a new one, or none when the one on disk is kept (tokens out there stay valid). */
async function tokenKeyFiles(o: IdentityInitOptions, present: readonly string[], out: Out): Promise<FileToWrite[]> {
  if (!o.rotateTokenKey && present.includes(identityFiles.tokenKey)) {
    const keyPath = join(o.dir, identityFiles.tokenKey);
    const keyPem = await readFile(keyPath, 'utf8');
    try {
      await importTokenSigningKey(keyPem);
    } catch (e) {
      throw new UsageError(`${keyPath} is not a usable token key (${(e as Error).message}): pass --rotate-token-key to make a new one`);
    }
    out.stderr(`token-key kept (${keyPath}): tokens it signed stay valid; --rotate-token-key replaces it\n`);
    if (present.includes(identityFiles.tokenPub)) return [];
    const pub = String(createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }));
    return [{ name: identityFiles.tokenPub, text: pub, mode: 0o644 }];
  }
  const key = await createTokenKey();
  out.stderr(`token-key ${present.includes(identityFiles.tokenKey) ? 'rotated: tokens signed with the old key no longer work' : 'created'}\n`);
  return [
    { name: identityFiles.tokenKey, text: key.privateKeyPem, mode: 0o600 },
    { name: identityFiles.tokenPub, text: key.publicKeyPem, mode: 0o644 },
  ];
}

export async function runIdentityInit(o: IdentityInitOptions, deps: IdentityInitDeps, out: Out): Promise<number> {
  try {
    // Refuse before making any key: nothing to throw away.
    const present = o.output === 'pem' ? await existingFiles(o.dir, ALL_FILES) : [];
    if (present.length > 0 && !o.force) {
      throw new UsageError(
        `${o.dir} already holds ${present.join(', ')}: pass --force to replace the CA (the token key is kept unless --rotate-token-key)`,
        'MESH_CLI_EXISTS',
      );
    }
    const now = deps.now();
    const ca = o.byo === undefined ? await makeCa(o, now, out) : await bringOwnCa(o.byo, now, out);
    if (o.output === 'yaml') {
      out.stdout(identityManifests(ca, o.namespace));
      out.stderr(`manifests printed (namespace ${o.namespace}): pipe them to kubectl apply -f -; no files written, no token key made\n`);
      return 0;
    }
    const files: FileToWrite[] = [
      { name: identityFiles.anchor, text: ca.anchorPem, mode: 0o644 },
      { name: identityFiles.issuerCert, text: ca.issuerCertPem, mode: 0o644 },
      { name: identityFiles.issuerKey, text: ca.issuerKeyPem, mode: 0o600 },
      ...(await tokenKeyFiles(o, present, out)),
    ];
    await writeFiles(o.dir, files);
    for (const f of files) out.stderr(`${join(o.dir, f.name)} ${present.includes(f.name) ? 'replaced' : 'created'} (${modeString(f.mode)})\n`);
    out.stderr(`identity directory ready: mesh-controller identity --dir ${o.dir} --trust-domain ${o.trustDomain}\n`);
    return 0;
  } catch (e) {
    return reportFailure(COMMAND, e, out);
  }
}

interface Flags {
  trustDomain: string;
  out: string;
  anchorValidity: string;
  issuerValidity: string;
  output: string;
  force: boolean;
  rotateTokenKey: boolean;
  anchor?: string;
  issuerCert?: string;
  issuerKey?: string;
  namespace: string;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `outGiven`: --out was on the command line (not its default). */
export function optionsFromFlags(f: Flags, outGiven: boolean): IdentityInitOptions {
  const output = parseChoice('-o/--output', f.output, ['pem', 'yaml'] as const);
  const byoFlags = [f.anchor, f.issuerCert, f.issuerKey];
  if (byoFlags.some((v) => v !== undefined) && byoFlags.some((v) => v === undefined)) {
    throw new UsageError('bringing your own CA takes all three of --anchor, --issuer-cert and --issuer-key');
  }
  if (output === 'yaml' && outGiven) throw new UsageError('-o yaml prints manifests and writes no files: drop --out, or use -o pem');
  if (!DNS_LABEL.test(f.namespace)) throw new UsageError(`--namespace: "${f.namespace}" is not a Kubernetes namespace name`);
  return {
    trustDomain: f.trustDomain,
    dir: f.out,
    anchorValidityMs: parseDuration('--anchor-validity', f.anchorValidity),
    issuerValidityMs: parseDuration('--issuer-validity', f.issuerValidity),
    output,
    force: f.force,
    rotateTokenKey: f.rotateTokenKey,
    namespace: f.namespace,
    ...(f.anchor === undefined ? {} : { byo: { anchorFile: f.anchor, issuerCertFile: f.issuerCert!, issuerKeyFile: f.issuerKey! } }),
  };
}

export function identityInitCommand(deps: IdentityInitDeps = { now: () => new Date() }, out: Out = processOut): Command {
  const command = new Command('init')
    .description('Create the mesh CA (trust anchor, issuer) and the service-account token key, or check and install your own CA')
    .option('--trust-domain <domain>', 'trust domain of every identity name', defaults.trustDomain)
    .option('--out <dir>', 'directory to write ca.crt, issuer.crt, issuer.key, token.key, token.pub', defaults.dir)
    .option('--anchor-validity <duration>', 'trust anchor lifetime', defaults.anchorValidity)
    .option('--issuer-validity <duration>', 'issuer lifetime (never past the anchor)', defaults.issuerValidity)
    .addOption(new Option('-o, --output <format>', 'pem: write the directory; yaml: print Kubernetes objects').choices(['pem', 'yaml']).default(defaults.output))
    .option('--force', 'replace the CA files of an existing directory', false)
    .option('--rotate-token-key', 'with --force: replace the token key too (its tokens stop working)', false)
    .option('--anchor <file>', 'your own trust anchor (PEM, may hold several roots)')
    .option('--issuer-cert <file>', 'your own issuer certificate, signed by the anchor')
    .option('--issuer-key <file>', "your own issuer's ECDSA P-256 private key")
    .option('--namespace <name>', 'namespace of the objects printed by -o yaml', defaults.namespace)
    .exitOverride()
    .action(async (flags: Flags) => {
      try {
        const options = optionsFromFlags(flags, command.getOptionValueSource('out') === 'cli');
        process.exitCode = await runIdentityInit(options, deps, out);
      } catch (e) {
        process.exitCode = reportFailure(COMMAND, e, out);
      }
    });
  return command;
}
