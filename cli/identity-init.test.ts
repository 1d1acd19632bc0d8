// `mesh identity init` and `mesh identity token` through their run functions
// (temporary directories, the real clock), and once through the real binary.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importTokenVerifyKey, verifyToken } from '../ca/index.js';
import type { Out } from './command.js';
import { optionsFromFlags, runIdentityInit, type IdentityInitOptions } from './identity-init.js';
import { runIdentityToken } from './identity-token.js';

const run = promisify(execFile);
const deps = { now: () => new Date() };
const FILES = ['ca.crt', 'issuer.crt', 'issuer.key', 'token.key', 'token.pub'];
const MODES: Record<string, number> = { 'ca.crt': 0o644, 'issuer.crt': 0o644, 'issuer.key': 0o600, 'token.key': 0o600, 'token.pub': 0o644 };

interface Captured extends Out {
  out: string;
  err: string;
}

function capture(): Captured {
  const c: Captured = { out: '', err: '', stdout: (t) => void (c.out += t), stderr: (t) => void (c.err += t) };
  return c;
}

function options(dir: string, more: Partial<IdentityInitOptions> = {}): IdentityInitOptions {
  return {
    trustDomain: 'cluster.local',
    dir,
    anchorValidityMs: 87_600 * 3_600_000,
    issuerValidityMs: 8_760 * 3_600_000,
    output: 'pem',
    force: false,
    rotateTokenKey: false,
    namespace: 'mesh',
    ...more,
  };
}

const read = (dir: string, name: string): Promise<string> => readFile(join(dir, name), 'utf8');
const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

/** Just enough YAML for what we print: maps by two-space indentation, scalars, `|` blocks. */
function parseYamlish(text: string): Array<Record<string, unknown>> {
  const block = (ls: string[], at: number, indent: number): [Record<string, unknown>, number] => {
    const map: Record<string, unknown> = {};
    while (at < ls.length) {
      const line = ls[at]!;
      const depth = line.length - line.trimStart().length;
      if (depth < indent) break;
      assert.equal(depth, indent, `unexpected indentation: ${JSON.stringify(line)}`);
      const m = /^([\w./-]+):(?: (.+))?$/.exec(line.trim());
      assert.ok(m, `not "key: value": ${JSON.stringify(line)}`);
      at++;
      if (m[2] === '|') {
        const body: string[] = [];
        while (at < ls.length && ls[at]!.startsWith(' '.repeat(indent + 2))) body.push(ls[at++]!.slice(indent + 2));
        map[m[1]!] = `${body.join('\n')}\n`;
      } else if (m[2] === undefined) {
        [map[m[1]!], at] = block(ls, at, indent + 2);
      } else {
        map[m[1]!] = m[2];
      }
    }
    return [map, at];
  };
  return text.split(/^---\n/m).map((doc) => {
    const ls = doc.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    const [map, end] = block(ls, 0, 0);
    assert.equal(end, ls.length, 'every line belongs to the document');
    return map;
  });
}

/** Issuer signed by the anchor, anchor self-signed, issuer key its own: what a proxy and the service rely on. */
function assertChain(anchorPem: string, issuerCertPem: string, issuerKeyPem: string): void {
  const anchor = new X509Certificate(anchorPem);
  const issuer = new X509Certificate(issuerCertPem);
  assert.ok(anchor.ca && issuer.ca);
  assert.ok(anchor.verify(anchor.publicKey), 'anchor is self-signed');
  assert.ok(issuer.checkIssued(anchor) && issuer.verify(anchor.publicKey), 'issuer is signed by the anchor');
  const keySpki = createPublicKey(createPrivateKey(issuerKeyPem)).export({ type: 'spki', format: 'der' });
  assert.ok(keySpki.equals(issuer.publicKey.export({ type: 'spki', format: 'der' })), 'issuer key matches its certificate');
}

describe('mesh identity init', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'mesh-identity-'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it('writes the directory: private keys 0600, a chain that verifies, progress on stderr only', async () => {
    const dir = join(tmp, 'made');
    const c = capture();
    assert.equal(await runIdentityInit(options(dir, { trustDomain: 'example.org' }), deps, c), 0, c.err);
    assert.equal(c.out, '');
    assert.deepEqual((await readdir(dir)).sort(), [...FILES].sort());
    for (const name of FILES) assert.equal(await modeOf(join(dir, name)), MODES[name], name);
    assert.equal(await modeOf(dir), 0o700);
    assertChain(await read(dir, 'ca.crt'), await read(dir, 'issuer.crt'), await read(dir, 'issuer.key'));
    const anchor = new X509Certificate(await read(dir, 'ca.crt'));
    assert.equal(anchor.subject, 'CN=root.example.org');
    assert.equal(new X509Certificate(await read(dir, 'issuer.crt')).subject, 'CN=identity.example.org');
    // --anchor-validity 87600h: ten years (less the 5 minutes it is backdated).
    const years = (Date.parse(anchor.validTo) - Date.parse(anchor.validFrom)) / (365 * 86_400_000);
    assert.ok(years > 9.99 && years < 10.01, `anchor lives ${years} years`);
    assert.match(c.err, /^trust-anchor\/root\.example\.org created/m);
    assert.match(c.err, new RegExp(`^${dir}/issuer\\.key created \\(0600\\)$`, 'm'));
  });

  it('sets every mode exactly, whatever the umask', async () => {
    const dir = join(tmp, 'umask');
    const previous = process.umask(0o077);
    try {
      assert.equal(await runIdentityInit(options(dir), deps, capture()), 0);
    } finally {
      process.umask(previous);
    }
    for (const name of FILES) assert.equal(await modeOf(join(dir, name)), MODES[name], name);
  });

  it('needs --force to overwrite; --force replaces the CA and keeps the token key unless --rotate-token-key', async () => {
    const dir = join(tmp, 'again');
    assert.equal(await runIdentityInit(options(dir), deps, capture()), 0);
    const first = Object.fromEntries(await Promise.all(FILES.map(async (f) => [f, await read(dir, f)] as const)));

    const refused = capture();
    assert.equal(await runIdentityInit(options(dir), deps, refused), 2);
    assert.deepEqual(lines(refused.err), [
      `mesh identity init: ${dir} already holds ${FILES.join(', ')}: pass --force to replace the CA (the token key is kept unless --rotate-token-key) [MESH_CLI_EXISTS]`,
    ]);
    for (const f of FILES) assert.equal(await read(dir, f), first[f], `${f} untouched`);

    await chmod(join(dir, 'issuer.key'), 0o644); // someone loosened it; a rewrite must tighten it again
    const forced = capture();
    assert.equal(await runIdentityInit(options(dir, { force: true }), deps, forced), 0, forced.err);
    assert.notEqual(await read(dir, 'ca.crt'), first['ca.crt']);
    assert.notEqual(await read(dir, 'issuer.key'), first['issuer.key']);
    assert.equal(await modeOf(join(dir, 'issuer.key')), 0o600);
    assert.equal(await read(dir, 'token.key'), first['token.key'], 'tokens already handed out stay valid');
    assert.match(forced.err, /^token-key kept/m);
    assert.deepEqual((await readdir(dir)).sort(), [...FILES].sort(), 'no temporary files left');

    assert.equal(await runIdentityInit(options(dir, { force: true, rotateTokenKey: true }), deps, capture()), 0);
    assert.notEqual(await read(dir, 'token.key'), first['token.key']);
    assert.equal(await modeOf(join(dir, 'token.key')), 0o600);
  });

  it('-o yaml prints a Namespace, the issuer Secret and the trust-roots ConfigMap, and writes nothing', async () => {
    const dir = join(tmp, 'for-yaml');
    assert.equal(await runIdentityInit(options(dir), deps, capture()), 0);
    const c = capture();
    const byo = { anchorFile: join(dir, 'ca.crt'), issuerCertFile: join(dir, 'issuer.crt'), issuerKeyFile: join(dir, 'issuer.key') };
    const unwritten = join(tmp, 'never');
    assert.equal(await runIdentityInit(options(unwritten, { output: 'yaml', byo }), deps, c), 0, c.err);
    await assert.rejects(stat(unwritten), 'no directory made');

    const [ns, secret, configMap, ...rest] = parseYamlish(c.out) as Array<Record<string, Record<string, string>>>;
    assert.equal(rest.length, 0);
    assert.deepEqual([ns!.kind, ns!.metadata!.name], ['Namespace', 'mesh']);
    assert.deepEqual([secret!.apiVersion, secret!.kind, secret!.type], ['v1', 'Secret', 'kubernetes.io/tls']);
    assert.deepEqual([secret!.metadata!.name, secret!.metadata!.namespace], ['mesh-identity-issuer', 'mesh']);
    const decoded = (key: string): string => {
      const value = secret!.data![key]!;
      assert.match(value, /^[A-Za-z0-9+/]+=*$/, `${key} is base64`);
      return Buffer.from(value, 'base64').toString('utf8');
    };
    assert.equal(decoded('tls.crt'), await read(dir, 'issuer.crt'));
    assert.equal(decoded('tls.key'), await read(dir, 'issuer.key'));
    assert.equal(decoded('ca.crt'), await read(dir, 'ca.crt'));
    assert.deepEqual([configMap!.kind, configMap!.metadata!.name, configMap!.metadata!.namespace], ['ConfigMap', 'mesh-identity-trust-roots', 'mesh']);
    assert.equal(configMap!.data!['ca-bundle.crt'], await read(dir, 'ca.crt'));

    // Made rather than brought: the same shapes, and the Secret's chain verifies.
    const made = capture();
    assert.equal(await runIdentityInit(options(unwritten, { output: 'yaml', namespace: 'identity-system' }), deps, made), 0);
    const [, s2, cm2] = parseYamlish(made.out) as Array<Record<string, Record<string, string>>>;
    const b64 = (v: string | undefined): string => Buffer.from(v!, 'base64').toString('utf8');
    assertChain(b64(s2!.data!['ca.crt']), b64(s2!.data!['tls.crt']), b64(s2!.data!['tls.key']));
    assert.equal(cm2!.data!['ca-bundle.crt'], b64(s2!.data!['ca.crt']));
    assert.equal(s2!.metadata!.namespace, 'identity-system');
    await assert.rejects(stat(unwritten));
  });

  it('brings your own CA: an openssl-made anchor and issuer (SEC1 key) are validated and copied', async () => {
    const ca = join(tmp, 'openssl');
    const openssl = async (...args: string[]): Promise<void> => void (await run('openssl', args, { cwd: tmp }));
    await run('mkdir', [ca]);
    await writeFile(join(ca, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${ca}/root.key`);
    await openssl('req', '-x509', '-new', '-key', `${ca}/root.key`, '-subj', '/CN=root.example.org', '-days', '30', '-out', `${ca}/root.crt`, '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${ca}/issuer.key`);
    await openssl('req', '-new', '-key', `${ca}/issuer.key`, '-subj', '/CN=identity.example.org', '-out', `${ca}/issuer.csr`);
    await openssl('x509', '-req', '-in', `${ca}/issuer.csr`, '-CA', `${ca}/root.crt`, '-CAkey', `${ca}/root.key`, '-days', '7', '-out', `${ca}/issuer.crt`, '-extfile', `${ca}/ext.cnf`);

    const dir = join(tmp, 'byo');
    const c = capture();
    const byo = { anchorFile: join(ca, 'root.crt'), issuerCertFile: join(ca, 'issuer.crt'), issuerKeyFile: join(ca, 'issuer.key') };
    assert.equal(await runIdentityInit(options(dir, { byo, trustDomain: 'example.org' }), deps, c), 0, c.err);
    assert.match(c.err, /^issuer\/identity\.example\.org validated .* signed by CN=root\.example\.org/m);
    assert.equal(await read(dir, 'issuer.key'), await readFile(byo.issuerKeyFile, 'utf8'), 'key copied as given');
    assert.equal(await modeOf(join(dir, 'issuer.key')), 0o600);
    assert.equal(new X509Certificate(await read(dir, 'ca.crt')).fingerprint256, new X509Certificate(await readFile(byo.anchorFile)).fingerprint256);
    assertChain(await read(dir, 'ca.crt'), await read(dir, 'issuer.crt'), await read(dir, 'issuer.key'));
    assert.deepEqual((await readdir(dir)).sort(), [...FILES].sort(), 'a token key is made alongside');
  });

  it('refuses an issuer signed by another anchor: one line naming the problem and the code, exit 2, nothing written', async () => {
    const a = join(tmp, 'anchor-a');
    const b = join(tmp, 'anchor-b');
    assert.equal(await runIdentityInit(options(a), deps, capture()), 0);
    assert.equal(await runIdentityInit(options(b), deps, capture()), 0);
    const dir = join(tmp, 'mixed');
    const c = capture();
    const byo = { anchorFile: join(a, 'ca.crt'), issuerCertFile: join(b, 'issuer.crt'), issuerKeyFile: join(b, 'issuer.key') };
    assert.equal(await runIdentityInit(options(dir, { byo }), deps, c), 2);
    assert.equal(c.out, '');
    assert.equal(lines(c.err).length, 1, c.err);
    assert.match(c.err, /^mesh identity init: the issuer certificate .* is not signed by the trust anchor .* \[MESH_CA_CHAIN_BROKEN\]\n$/);
    await assert.rejects(stat(dir), 'nothing written');

    // A key that belongs to another issuer is refused the same way, with its own code.
    const wrongKey = capture();
    const mismatched = { anchorFile: join(a, 'ca.crt'), issuerCertFile: join(a, 'issuer.crt'), issuerKeyFile: join(b, 'issuer.key') };
    assert.equal(await runIdentityInit(options(dir, { byo: mismatched }), deps, wrongKey), 2);
    assert.match(wrongKey.err, /^mesh identity init: the issuer key does not belong to .* \[MESH_CA_KEY_MISMATCH\]\n$/);
  });

  it('refuses flags that cannot work together', () => {
    const flags = { trustDomain: 'cluster.local', out: 'x', anchorValidity: '87600h', issuerValidity: '8760h', output: 'pem', force: false, rotateTokenKey: false, namespace: 'mesh' };
    assert.throws(() => optionsFromFlags({ ...flags, anchor: 'ca.crt' }, false), /all three of --anchor, --issuer-cert and --issuer-key/);
    assert.throws(() => optionsFromFlags({ ...flags, output: 'yaml' }, true), /-o yaml prints manifests and writes no files/);
    assert.throws(() => optionsFromFlags({ ...flags, issuerValidity: '1y' }, false), /--issuer-validity: "1y" is not a duration/);
    assert.throws(() => optionsFromFlags({ ...flags, namespace: 'Mesh' }, false), /--namespace/);
    assert.equal(optionsFromFlags({ ...flags, output: 'yaml' }, false).output, 'yaml');
  });
});

describe('mesh identity token', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-token-'));
    assert.equal(await runIdentityInit(options(dir, { force: true }), deps, capture()), 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('prints only the token, signed with DIR/token.key, for the account and lifetime asked', async () => {
    const c = capture();
    const ttlMs = 720 * 3_600_000;
    assert.equal(await runIdentityToken({ namespace: 'emojivoto', serviceAccount: 'web', dir, ttlMs }, deps, c), 0, c.err);
    assert.match(c.out, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const verified = await verifyToken(c.out.trim(), { publicKey: await importTokenVerifyKey(await read(dir, 'token.pub')) });
    assert.equal(verified.subject, 'system:serviceaccount:emojivoto:web');
    assert.ok(Math.abs(verified.expiresAt.getTime() - (Date.now() + ttlMs)) < 5_000);
    assert.match(c.err, /^token for system:serviceaccount:emojivoto:web created \(expires /);
  });

  it('says what to do when there is no token key, or the account is not a name', async () => {
    const missing = capture();
    assert.equal(await runIdentityToken({ namespace: 'a', serviceAccount: 'b', dir: join(dir, 'nope'), ttlMs: 1000 }, deps, missing), 2);
    assert.match(missing.err, /^mesh identity token: cannot read .*token\.key \(ENOENT\): run `mesh identity init --out .*` first \[MESH_IDENTITY_FILES\]\n$/);
    const badName = capture();
    assert.equal(await runIdentityToken({ namespace: 'Default', serviceAccount: 'web', dir, ttlMs: 1000 }, deps, badName), 2);
    assert.match(badName.err, /\[MESH_CA_BAD_IDENTITY\]\n$/);
  });

  it('is wired into the mesh binary with Go-style durations', async () => {
    const mesh = fileURLToPath(new URL('./mesh.js', import.meta.url));
    const r = await run(process.execPath, [mesh, 'identity', 'token', '--dir', dir, '--namespace', 'default', '--service-account', 'db', '--ttl', '1h']);
    const verified = await verifyToken(r.stdout.trim(), { publicKey: await importTokenVerifyKey(await read(dir, 'token.pub')) });
    assert.equal(verified.subject, 'system:serviceaccount:default:db');
    assert.ok(Math.abs(verified.expiresAt.getTime() - (Date.now() + 3_600_000)) < 5_000);
    await assert.rejects(run(process.execPath, [mesh, 'identity', 'init', '--out', dir]), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? '', /\[MESH_CLI_EXISTS\]/);
      return true;
    });
  });
});
