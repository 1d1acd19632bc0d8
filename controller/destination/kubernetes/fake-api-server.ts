// A test API server: NO real kube-apiserver runs in this environment, so the
// Kubernetes source is tested against this one. It serves real API object
// shapes (a Service, an EndpointSlice with endpoints[].targetRef, Pods with
// spec.serviceAccountName and containers, written as a cluster returns them)
// over real HTTPS, lists with a resourceVersion, and watch streams as the
// API server writes them: `?watch=1&resourceVersion=…&allowWatchBookmarks=true`,
// one JSON event per line, BOOKMARK events, and for a version it no longer
// has, 200 followed by an ERROR event carrying a 410 `Status` (Expired).
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TOKEN = 'destination-controller-token';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string; [k: string]: unknown }; [k: string]: unknown };

const KINDS: Record<string, { apiVersion: string; kind: string }> = {
  '/api/v1/services': { apiVersion: 'v1', kind: 'Service' },
  '/apis/discovery.k8s.io/v1/endpointslices': { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
  '/api/v1/pods': { apiVersion: 'v1', kind: 'Pod' },
};

interface Watcher {
  path: string;
  res: ServerResponse;
}

export class FakeApiServer {
  /** Every request's path and query, in order. */
  readonly requests: string[] = [];
  private rv = 1000;
  /** Watches from a version below this get 410 Expired (the server compacted its history). */
  private compactedBelow = 0;
  private readonly store = new Map<string, Map<string, Obj>>(Object.keys(KINDS).map((p) => [p, new Map()]));
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private server: https.Server | undefined;
  port = 0;

  private constructor(private readonly dir: string, private readonly tls: { cert: string; key: string }) {}

  static async start(): Promise<FakeApiServer> {
    const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=kube-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'pipe' });
    const s = new FakeApiServer(dir, { cert: readFileSync(join(dir, 'tls.crt'), 'utf8'), key: readFileSync(join(dir, 'tls.key'), 'utf8') });
    await s.up();
    return s;
  }

  /** A kubeconfig for this server, as `kubectl config view --raw` writes one. */
  get kubeconfig(): string {
    const path = join(this.dir, 'kubeconfig');
    writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from(this.tls.cert).toString('base64')}
    server: https://127.0.0.1:${this.port}
  name: test
contexts:
- context:
    cluster: test
    user: mesh-destination
  name: test
current-context: test
users:
- name: mesh-destination
  user:
    token: ${TOKEN}
`);
    return path;
  }

  async up(): Promise<void> {
    const server = https.createServer({ cert: this.tls.cert, key: this.tls.key }, (req, res) => this.handle(req.url ?? '/', req.headers.authorization, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** The API server goes away: connections cut, nothing listening. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.watchers.clear();
    await closed;
  }

  /** Compacts history: any watch from an older version is told 410 Expired. */
  compact(): void {
    this.compactedBelow = this.rv + 1;
  }

  /** Ends every open watch, as the server does when a watch's timeoutSeconds passes. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  bookmark(): void {
    const rv = String(++this.rv);
    for (const w of this.watchers) {
      const k = KINDS[w.path]!;
      this.write(w, { type: 'BOOKMARK', object: { kind: k.kind, apiVersion: k.apiVersion, metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } } } });
    }
  }

  put(path: keyof typeof KINDS | string, object: Obj): void {
    const items = this.store.get(path)!;
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    const type = items.has(key) ? 'MODIFIED' : 'ADDED';
    const stored: Obj = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.rv), uid: object.metadata.uid ?? `uid-${key}` } };
    items.set(key, stored);
    this.notify(path, type, stored);
  }

  remove(path: string, namespace: string, name: string): void {
    const items = this.store.get(path)!;
    const object = items.get(`${namespace}/${name}`);
    if (object === undefined) return;
    items.delete(`${namespace}/${name}`);
    this.notify(path, 'DELETED', { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.rv) } });
  }

  async close(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // Every change, so that a watch from resourceVersion N sees what happened
  // after N even if it started later (as the API server's watch cache does).
  private readonly history: Array<{ path: string; rv: number; type: string; object: Obj }> = [];

  private notify(path: string, type: string, object: Obj): void {
    this.history.push({ path, rv: Number(object.metadata.resourceVersion), type, object });
    for (const w of this.watchers) if (w.path === path) this.write(w, { type, object });
  }

  private write(w: Watcher, event: unknown): void {
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  }

  private handle(url: string, authorization: string | undefined, res: ServerResponse): void {
    this.requests.push(url);
    if (authorization !== `Bearer ${TOKEN}`) return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    const u = new URL(url, 'https://x');
    const kind = KINDS[u.pathname];
    const items = this.store.get(u.pathname);
    if (kind === undefined || items === undefined) return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (u.searchParams.get('watch') !== '1' && u.searchParams.get('watch') !== 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      // List items carry no kind/apiVersion; the list does.
      res.end(JSON.stringify({
        kind: `${kind.kind}List`,
        apiVersion: kind.apiVersion,
        metadata: { resourceVersion: String(this.rv) },
        items: [...items.values()].map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
      }));
      return;
    }
    const from = Number(u.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const w: Watcher = { path: u.pathname, res };
    if (from < this.compactedBelow) {
      this.write(w, { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.compactedBelow})`, reason: 'Expired', code: 410 } });
      res.end();
      return;
    }
    for (const h of this.history) if (h.path === u.pathname && h.rv > from) this.write(w, { type: h.type, object: h.object });
    this.watchers.add(w);
    res.once('close', () => this.watchers.delete(w));
  }
}

// Objects as a cluster returns them (trimmed of managedFields).
export const service = (o: { annotations?: Record<string, string> } = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web-svc', namespace: 'emojivoto', creationTimestamp: '2024-05-01T10:00:00Z', labels: { app: 'web-svc' }, annotations: o.annotations ?? {} },
  spec: {
    clusterIP: '10.96.14.20',
    clusterIPs: ['10.96.14.20'],
    internalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    selector: { app: 'web-svc' },
    sessionAffinity: 'None',
    type: 'ClusterIP',
  },
  status: { loadBalancer: {} },
});

export const slice = (endpoints: Array<{ ip: string; pod: string; ready?: boolean }>): Obj => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: 'web-svc-7xk2p',
    namespace: 'emojivoto',
    generateName: 'web-svc-',
    labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', 'kubernetes.io/service-name': 'web-svc', app: 'web-svc' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web-svc', uid: 'uid-emojivoto/web-svc', blockOwnerDeletion: true, controller: true }],
  },
  addressType: 'IPv4',
  endpoints: endpoints.map((e) => ({
    addresses: [e.ip],
    conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
    nodeName: 'node-a',
    targetRef: { kind: 'Pod', name: e.pod, namespace: 'emojivoto', uid: `uid-emojivoto/${e.pod}` },
    zone: 'europe-west1-b',
  })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

export const pod = (name: string, ip: string, o: { meshed: boolean; serviceAccount?: string; opaquePorts?: string }): Obj => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: 'emojivoto',
    labels: { app: 'web-svc', 'pod-template-hash': '5d9c8b7f6' },
    annotations: { ...(o.meshed ? { 'mesh.io/injected': 'mesh-init,mesh-proxy', 'mesh.io/proxy-version': '0.1.0' } : {}), ...(o.opaquePorts === undefined ? {} : { 'config.mesh.io/opaque-ports': o.opaquePorts }) },
  },
  spec: {
    serviceAccountName: o.serviceAccount ?? 'web',
    serviceAccount: o.serviceAccount ?? 'web',
    nodeName: 'node-a',
    containers: [
      { name: 'web-svc', image: 'buoyantio/emojivoto-web:v11', ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }] },
      ...(o.meshed ? [{ name: 'mesh-proxy', image: 'mesh:0.1.0', env: [{ name: 'MESH_PROXY_LOG_LEVEL', value: 'info' }], ports: [{ containerPort: 4143, name: 'mesh-proxy', protocol: 'TCP' }] }] : []),
    ],
    ...(o.meshed ? { initContainers: [{ name: 'mesh-init', image: 'mesh:0.1.0' }] } : {}),
  },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.18.0.2' },
});
