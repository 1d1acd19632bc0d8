// `mesh inject FILE|-`: a pipe filter over Kubernetes YAML. By default it asks
// for injection (mesh.io/inject: enabled on each pod template; the webhook does
// the rest, as `linkerd inject` does); --manual writes the whole sidecar in with
// the injector's own library, for clusters without the webhook. Documents that
// hold no pod template pass through untouched; comments and key order stay.
import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { isSeq, parseAllDocuments, type Document } from 'yaml';
import { certificatesFromPem } from '../ca/index.js';
import { INJECT } from '../contract/annotations.js';
import { describeProblems, destinationServiceUrl, identityServiceUrl, inject, type InjectorConfig } from '../injector/index.js';
import { processOut, reportFailure, UsageError, type Out } from './command.js';
import { meshImage, meshVersion } from './version.js';
import { applyPatchToYaml } from './yaml-patch.js';

export interface InjectOptions {
  /** A path, or '-' for standard input. */
  file: string;
  manual: boolean;
  nativeSidecar: boolean;
  image: string;
  namespace: string;
  trustDomain: string;
  /** --manual: the trust anchors PEM file. */
  trustAnchors: string;
}

export interface InjectDeps {
  readStdin(): Promise<string>;
  version?: string;
}

const COMMAND = 'mesh inject';

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

interface Summary {
  lines: string[];
  failed: boolean;
}

type Path = (string | number)[];

function describeObject(doc: Document, at: Path): string {
  const kind = String(doc.getIn([...at, 'kind']) ?? 'object').toLowerCase();
  const meta = (key: string): unknown => doc.getIn([...at, 'metadata', key]);
  const name = meta('name') ?? (meta('generateName') !== undefined ? `${String(meta('generateName'))}*` : '<unnamed>');
  return `${kind} "${String(name)}"`;
}

function visit(doc: Document, at: Path, o: InjectOptions, config: InjectorConfig, summary: Summary): void {
  const kind = doc.getIn([...at, 'kind']);
  if (kind === 'List') {
    const items = doc.getIn([...at, 'items'], true);
    const count = isSeq(items) ? items.items.length : 0;
    for (let i = 0; i < count; i++) visit(doc, [...at, 'items', i], o, config, summary);
    return;
  }
  const what = describeObject(doc, at);
  if (kind === 'Namespace') {
    // A namespace is never injected itself: annotated, every pod created in it later is.
    doc.setIn([...at, 'metadata', 'annotations', INJECT], 'enabled');
    summary.lines.push(`${what} annotated`);
    return;
  }
  const path = typeof kind === 'string' ? TEMPLATE_PATH[kind] : undefined;
  if (path === undefined) return;
  const template: Path = [...at, ...path];
  if (!o.manual) {
    doc.setIn([...template, 'metadata', 'annotations', INJECT], 'enabled');
    summary.lines.push(`${what} injected`);
    return;
  }
  const node = doc.getIn(template, true) as { toJSON(): unknown } | undefined;
  const result = inject((node?.toJSON() ?? {}) as Parameters<typeof inject>[0], undefined, config, { force: true });
  switch (result.kind) {
    case 'injected':
      applyPatchToYaml(doc, template, result.patch);
      summary.lines.push(`${what} injected`);
      return;
    case 'skip':
      summary.lines.push(`${what} skipped (${result.message})`);
      return;
    case 'invalid':
      summary.failed = true;
      summary.lines.push(`${what} not injected: ${describeProblems(result.problems)}`);
      return;
  }
}

/** Kubernetes' own YAML writers (kubectl -o yaml) do not indent lists under their key; keep whichever the input used. */
function indentsSequences(text: string): boolean {
  return !/^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(text);
}

export function injectYaml(text: string, o: InjectOptions, config: InjectorConfig): { yaml: string; summary: Summary } {
  const docs = parseAllDocuments(text);
  const summary: Summary = { lines: [], failed: false };
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new UsageError(`${o.file === '-' ? 'standard input' : o.file}: not YAML (${doc.errors[0]!.message.split('\n')[0]})`);
    if (doc.contents !== null) visit(doc, [], o, config, summary);
  }
  const options = { indentSeq: indentsSequences(text), lineWidth: 0, flowCollectionPadding: false };
  const yaml = docs
    .map((doc, i) => {
      if (i > 0) doc.directives.docStart = true;
      return doc.toString(options);
    })
    .join('');
  return { yaml, summary };
}

async function configFor(o: InjectOptions, version: string): Promise<InjectorConfig> {
  let trustAnchorsPem = '';
  if (o.manual) {
    try {
      trustAnchorsPem = await readFile(o.trustAnchors, 'utf8');
      certificatesFromPem(trustAnchorsPem, o.trustAnchors);
    } catch (e) {
      throw new UsageError(`--trust-anchors: ${o.trustAnchors}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (--manual writes the trust anchors into each pod: mesh identity init makes them)`);
    }
  }
  return {
    image: o.image,
    imagePullPolicy: 'IfNotPresent',
    version,
    controlPlaneNamespace: o.namespace,
    trustDomain: o.trustDomain,
    trustAnchorsPem,
    identityUrl: identityServiceUrl(o.namespace),
    destinationUrl: destinationServiceUrl(o.namespace),
    nativeSidecar: o.nativeSidecar,
    injectedBy: 'cli',
  };
}

export async function runInject(o: InjectOptions, deps: InjectDeps, out: Out): Promise<number> {
  try {
    const text = o.file === '-' ? await deps.readStdin() : await readFile(o.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${o.file} (${e.code ?? e.message})`);
    });
    const { yaml, summary } = injectYaml(text, o, await configFor(o, deps.version ?? meshVersion));
    out.stdout(yaml);
    for (const line of summary.lines) out.stderr(`${line}\n`);
    return summary.failed ? 2 : 0;
  } catch (e) {
    return reportFailure(COMMAND, e, out);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

interface Flags {
  manual: boolean;
  nativeSidecar: string;
  image: string;
  namespace: string;
  trustDomain: string;
  trustAnchors: string;
}

export function injectCommand(out: Out = processOut): Command {
  return new Command('inject')
    .description('Add the mesh to the workloads in Kubernetes YAML: FILE, or - for standard input (kubectl get deploy -o yaml | mesh inject - | kubectl apply -f -)')
    .argument('<file>', 'YAML file, or - for standard input')
    .option('--manual', 'write the sidecar itself into each pod template (no webhook needed)', false)
    .addOption(new Option('--native-sidecar <bool>', '--manual: the proxy as a native sidecar (Kubernetes 1.29+)').choices(['true', 'false']).default('true'))
    .option('--image <image>', '--manual: the mesh image', meshImage)
    .option('--namespace <ns>', '--manual: the control-plane namespace', 'mesh')
    .option('--trust-domain <domain>', '--manual: trust domain of workload identities', 'cluster.local')
    .option('--trust-anchors <file>', '--manual: trust anchor PEM', 'mesh-identity/ca.crt')
    .exitOverride()
    .action(async (file: string, f: Flags) => {
      process.exitCode = await runInject({ file, ...f, nativeSidecar: f.nativeSidecar === 'true' }, { readStdin: () => readAll(process.stdin) }, out);
    });
}
