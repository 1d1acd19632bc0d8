// `mesh-controller injector`: the mutating admission webhook (injector/) as a
// process. Flags → typed options → serve until SIGTERM/SIGINT.
import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { certificatesFromPem, issueServingCert } from '../ca/index.js';
import { loadIssuer } from '../controller/identity/files.js';
import { apiNamespaces, destinationServiceUrl, identityServiceUrl, startInjector, staticNamespaces, type InjectorConfig, type NamespaceSource } from '../injector/index.js';
import { createKubeClient } from '../shared/kubernetes/client.js';
import { findKubernetesCredentials } from '../shared/kubernetes/credentials.js';
import { Log, type LogLevel } from '../shared/log.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { parseListenAddress } from './flags.js';
import { meshImage, meshVersion } from './version.js';

const COMMAND = 'mesh-controller injector';

interface Flags {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  identityDir?: string;
  serviceName: string;
  trustAnchors: string;
  image: string;
  namespace: string;
  trustDomain: string;
  nativeSidecar: string;
  kubeconfig?: string;
  logLevel: string;
}

async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The serving certificate: given files (mesh install's Secret), or issued now from the issuer of an identity directory. */
async function servingCert(f: Flags): Promise<{ certPem: string; keyPem: string }> {
  if (f.tlsCert !== undefined && f.tlsKey !== undefined) return { certPem: await readFlagFile('--tls-cert', f.tlsCert), keyPem: await readFlagFile('--tls-key', f.tlsKey) };
  if (f.identityDir === undefined) throw new UsageError('give --tls-cert and --tls-key, or --identity-dir to issue a serving certificate from the mesh issuer');
  const { issuer } = await loadIssuer(f.identityDir, new Date());
  const cert = await issueServingCert({ issuer, dnsNames: [f.serviceName], lifetimeMs: 365 * 86_400_000 });
  return { certPem: cert.chainPem, keyPem: cert.keyPem };
}

async function namespaceSource(f: Flags, log: Log): Promise<NamespaceSource> {
  const credentials = findKubernetesCredentials({ kubeconfig: f.kubeconfig });
  if (credentials.kind === 'none') {
    // Off a cluster (a test, a demo) pods' own annotations still decide.
    log.warn('no Kubernetes credentials: namespace annotations are not read', { reason: credentials.reason });
    return staticNamespaces([]);
  }
  const client = await createKubeClient({ credentials, userAgent: 'mesh-controller/injector', timeoutMs: 2_000 });
  return apiNamespaces((path) => client.getJson(path));
}

function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export async function runControllerInjector(f: Flags, out: Out): Promise<number> {
  const log = new Log(f.logLevel as LogLevel);
  try {
    const listen = parseListenAddress('--listen', f.listen);
    if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    const trustAnchorsPem = await readFlagFile('--trust-anchors', f.trustAnchors);
    try {
      certificatesFromPem(trustAnchorsPem, f.trustAnchors);
    } catch (e) {
      throw new UsageError(`--trust-anchors: ${(e as Error).message}`);
    }
    const config: InjectorConfig = {
      image: f.image,
      imagePullPolicy: 'IfNotPresent',
      version: meshVersion,
      controlPlaneNamespace: f.namespace,
      trustDomain: f.trustDomain,
      trustAnchorsPem,
      identityUrl: identityServiceUrl(f.namespace),
      destinationUrl: destinationServiceUrl(f.namespace),
      nativeSidecar: f.nativeSidecar === 'true',
      injectedBy: 'webhook',
    };
    const cert = await servingCert(f);
    const service = await startInjector({ ...cert, host: listen.host, port: listen.port, config, namespaces: await namespaceSource(f, log) }, { log });
    await untilSignalled();
    log.info('stopping');
    await service.close();
    return 0;
  } catch (e) {
    return reportFailure(COMMAND, e, out);
  }
}

export function controllerInjectorCommand(out: Out = processOut): Command {
  return new Command('injector')
    .description('Serve the mutating admission webhook: POST /inject (admission.k8s.io/v1 AdmissionReview) over HTTPS, plus /live and /ready')
    .option('--listen <addr:port>', 'address to serve on', '0.0.0.0:8443')
    .option('--tls-cert <file>', 'serving certificate chain (PEM), e.g. from the mesh-injector-tls Secret')
    .option('--tls-key <file>', 'its private key (PEM)')
    .option('--identity-dir <dir>', 'instead of --tls-*: issue a serving certificate from this identity directory\'s issuer')
    .option('--service-name <name>', 'DNS name the API server calls (with --identity-dir)', 'mesh-injector.mesh.svc')
    .requiredOption('--trust-anchors <file>', 'trust anchor PEM written into injected pods')
    .option('--image <image>', 'mesh image for mesh-init and mesh-proxy', meshImage)
    .option('--namespace <ns>', 'control-plane namespace', 'mesh')
    .option('--trust-domain <domain>', 'trust domain of workload identities', 'cluster.local')
    .addOption(new Option('--native-sidecar <bool>', 'inject the proxy as a native sidecar unless a pod says otherwise (Kubernetes 1.29+)').choices(['true', 'false']).default('true'))
    .option('--kubeconfig <path>', 'outside a cluster: where to read namespaces from')
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .exitOverride()
    .action(async (f: Flags) => {
      process.exitCode = await runControllerInjector(f, out);
    });
}
