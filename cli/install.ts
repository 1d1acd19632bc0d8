// `mesh install`: every control-plane object, ready for `kubectl apply -f -`;
// `mesh uninstall`: what to delete, for `kubectl delete -f -`. The CA comes
// from `mesh identity init`'s directory (--identity-dir) or is made here; the
// injector's serving certificate is issued from its issuer now.
import { Command, Option } from 'commander';
import { createIssuer, createTrustAnchor, issueServingCert, validateIssuer } from '../ca/index.js';
import { readIdentityFile } from '../controller/identity/files.js';
import { Document } from 'yaml';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseDuration } from './flags.js';
import type { IdentityMaterial } from './identity-manifests.js';
import { injectorServiceName, installManifests, type Manifest } from './install-objects.js';
import { meshImage, meshVersion } from './version.js';

export interface InstallOptions {
  namespace: string;
  image: string;
  trustDomain: string;
  identityDir?: string;
  nativeSidecar: boolean;
  /** Lifetime of the injector's serving certificate (never past the issuer's). */
  webhookCertValidityMs: number;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

async function identityMaterial(o: InstallOptions, now: Date, out: Out): Promise<IdentityMaterial> {
  if (o.identityDir !== undefined) {
    const anchorPem = await readIdentityFile(o.identityDir, 'anchor');
    const issuerCertPem = await readIdentityFile(o.identityDir, 'issuerCert');
    const issuerKeyPem = await readIdentityFile(o.identityDir, 'issuerKey');
    const checked = await validateIssuer({ anchorPem, issuerCertPem, issuerKeyPem, now });
    for (const w of checked.warnings) out.stderr(`Warning: ${w}\n`);
    return { anchorPem, issuerCertPem, issuerKeyPem };
  }
  const anchor = await createTrustAnchor({ trustDomain: o.trustDomain, validityDays: 3650, now });
  const issuer = await createIssuer(anchor, { trustDomain: o.trustDomain, validityDays: 365, now });
  // As linkerd install does: the anchor's key is not kept, so the issuer cannot be renewed from it.
  out.stderr('trust anchor and issuer created for this install (anchor key discarded); for your own CA: mesh identity init, then --identity-dir\n');
  return { anchorPem: anchor.certPem, issuerCertPem: issuer.certPem, issuerKeyPem: issuer.keyPem };
}

export async function installObjects(o: InstallOptions, now: Date, out: Out): Promise<Manifest[]> {
  const identity = await identityMaterial(o, now, out);
  const { issuer } = await validateIssuer({ ...identity, now });
  const tls = await issueServingCert({ issuer, dnsNames: [injectorServiceName(o.namespace)], lifetimeMs: o.webhookCertValidityMs, now });
  return installManifests({ namespace: o.namespace, image: o.image, version: meshVersion, trustDomain: o.trustDomain, identity, injectorTls: { chainPem: tls.chainPem, keyPem: tls.keyPem }, nativeSidecar: o.nativeSidecar });
}

export function toYaml(manifests: readonly Manifest[], header: string): string {
  return `# ${header}\n` + manifests.map((m) => {
    const doc = new Document(m.object);
    doc.commentBefore = ` ${m.why}`;
    return `---\n${doc.toString({ lineWidth: 0, indentSeq: false })}`;
  }).join('');
}

export async function runInstall(o: InstallOptions, deps: { now(): Date }, out: Out): Promise<number> {
  try {
    const manifests = await installObjects(o, deps.now(), out);
    out.stdout(toYaml(manifests, `mesh ${meshVersion} control plane: kubectl apply -f - (namespace first, webhook configuration last)`));
    out.stderr(`${manifests.length} objects printed for namespace ${o.namespace}: pipe them to kubectl apply -f -, then run mesh check\n`);
    return 0;
  } catch (e) {
    return reportFailure('mesh install', e, out);
  }
}

/** What to delete, webhook configuration first: from then on no new pod is sent to an injector that is going away. */
export function uninstallYaml(namespace: string): string {
  const fake = installManifests({
    namespace, image: '', version: meshVersion, trustDomain: 'cluster.local', nativeSidecar: true,
    identity: { anchorPem: '', issuerCertPem: '', issuerKeyPem: '' }, injectorTls: { chainPem: '', keyPem: '' },
  });
  const refs = fake.reverse().map((m) => ({ why: `delete ${m.object.kind.toLowerCase()}`, object: { apiVersion: m.object.apiVersion, kind: m.object.kind, metadata: { name: m.object.metadata.name, ...(m.object.metadata.namespace === undefined ? {} : { namespace: m.object.metadata.namespace }) } } }));
  return toYaml(refs, `mesh control plane in ${namespace}: kubectl delete -f - (webhook configuration first, namespace last)`);
}

interface Flags {
  namespace: string;
  image: string;
  trustDomain: string;
  identityDir?: string;
  nativeSidecar: string;
  webhookCertValidity: string;
}

function checkNamespace(ns: string): string {
  if (!DNS_LABEL.test(ns)) throw new UsageError(`--namespace: "${ns}" is not a Kubernetes namespace name`);
  return ns;
}

export function installCommand(out: Out = processOut): Command {
  return new Command('install')
    .description('Print the control plane as Kubernetes objects: mesh install | kubectl apply -f -')
    .option('--namespace <ns>', 'control-plane namespace', 'mesh')
    .option('--image <image>', 'mesh image (built from the Dockerfile)', meshImage)
    .option('--trust-domain <domain>', 'trust domain of workload identities', 'cluster.local')
    .option('--identity-dir <dir>', 'the CA from mesh identity init (default: a new one, its anchor key discarded)')
    .addOption(new Option('--native-sidecar <bool>', 'inject proxies as native sidecars (Kubernetes 1.29+)').choices(['true', 'false']).default('true'))
    .option('--webhook-cert-validity <duration>', "lifetime of the injector's serving certificate", '8760h')
    .exitOverride()
    .action(async (f: Flags) => {
      try {
        const o: InstallOptions = {
          namespace: checkNamespace(f.namespace),
          image: f.image,
          trustDomain: f.trustDomain,
          ...(f.identityDir === undefined ? {} : { identityDir: f.identityDir }),
          nativeSidecar: f.nativeSidecar === 'true',
          webhookCertValidityMs: parseDuration('--webhook-cert-validity', f.webhookCertValidity),
        };
        process.exitCode = await runInstall(o, { now: () => new Date() }, out);
      } catch (e) {
        process.exitCode = reportFailure('mesh install', e, out);
      }
    });
}

export function uninstallCommand(out: Out = processOut): Command {
  return new Command('uninstall')
    .description('Print the control-plane objects to delete: mesh uninstall | kubectl delete -f -')
    .option('--namespace <ns>', 'control-plane namespace', 'mesh')
    .exitOverride()
    .action((f: { namespace: string }) => {
      try {
        out.stdout(uninstallYaml(checkNamespace(f.namespace)));
      } catch (e) {
        process.exitCode = reportFailure('mesh uninstall', e, out);
      }
    });
}
