// The injector's output, run for real. Two pods as a Deployment's ReplicaSet
// would create them (service accounts `web` and `api` in `default`, with
// config.mesh.io annotations) go through the injector's patch; the patched
// specs' mesh-init arguments and mesh-proxy environment then start a real
// mesh-init and mesh-proxy in lab pods a (web) and b (api), with an identity
// service in a third pod. On the wire: web's skipped outbound port bypasses
// its proxy, api's opaque port is forwarded without detection, and HTTP
// between them is mTLS with the service-account identities.
//
// There is no Kubernetes here, so what kubelet would do to the spec is done by
// hand, and only this:
//   - `valueFrom.fieldRef` variables get the pod's own metadata.namespace and
//     spec.serviceAccountName, and `$(VAR)` references are expanded from the
//     variables before them — kubelet's rules (this makes the identity name).
//   - The projected identity volume (mounted at SIDECAR.identityDir) becomes a
//     per-pod temp directory holding what the projection would: `token`, a
//     service-account token for audience identity.mesh.io (issued by the lab's
//     MeshIdentity in place of the API server), and `trust-anchors.pem`, the
//     pod's own mesh.io/identity-trust-anchors annotation (the downwardAPI
//     source). So MESH_PROXY_IDENTITY_TOKEN_FILE and _TRUST_ANCHORS are
//     substituted only in their directory prefix.
//   - MESH_PROXY_IDENTITY_URL names the identity Service's cluster DNS name,
//     which does not resolve in the lab: it is replaced by the identity pod's
//     address and port.
// Every other MESH_PROXY_* value is passed exactly as injected (the log level
// too: the pods ask for debug through config.mesh.io/proxy-log-level).
//
// Discovery does not exist yet, so what it would tell web's proxy about api is
// given by hand, as in the other mTLS tests: MESH_PROXY_MESHED_DESTINATIONS
// (b's addresses are api's identity) and — the client half of api's
// opaque-ports annotation — api's injected opaque ports added to web's own
// MESH_PROXY_OPAQUE_PORTS (read from api's patched spec, not written here).
// mesh-init's arguments are flags only (no file paths): they run unchanged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IContainer, IPod } from 'kubernetes-models/v1';
import { applyPatch, inject, type InjectorConfig, type NamespaceInfo } from '../injector/index.js';
import { CONFIG, INJECT, RECORD } from '../contract/annotations.js';
import { PROXY_ENV, SIDECAR } from '../contract/sidecar.js';
import { eventually, Lab, type Pod, type PodProcess } from './harness/index.js';
import { IDENTITY_PORT, MeshIdentity } from './identity-lab.js';
import { fixture, greetingPeer, meshInit, node, proxiesReady, startEcho, startProxy, tcpClient } from './mesh.js';

const APP_UID = 1000;
const NS = 'default';
const escape = (s: string): string => s.replace(/[.[\]]/g, '\\$&');

/** A pod as a Deployment's ReplicaSet creates it, as the API server hands it to the webhook. */
function deploymentPod(app: string, annotations: Record<string, string>, ports: number[]): IPod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${app}-5d8f7c9b6d-`,
      namespace: NS,
      labels: { app, 'pod-template-hash': '5d8f7c9b6d' },
      annotations: { [INJECT]: 'enabled', [CONFIG.proxyLogLevel]: 'debug', ...annotations },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-5d8f7c9b6d`, uid: '00000000-0000-0000-0000-000000000000', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      serviceAccountName: app,
      containers: [{ name: app, image: `example/${app}:1.0`, ports: ports.map((containerPort) => ({ containerPort, protocol: 'TCP' })) }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
    },
  };
}

function patched(pod: IPod, ns: NamespaceInfo, config: InjectorConfig): IPod {
  const r = inject(pod, ns, config);
  assert.equal(r.kind, 'injected', JSON.stringify(r));
  if (r.kind !== 'injected') throw new Error('not injected');
  return applyPatch(pod, r.patch);
}

const container = (pod: IPod, name: string): IContainer => {
  const c = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((x) => x.name === name);
  assert.ok(c, `${name} in the patched pod`);
  return c;
};

/** The container's environment as kubelet resolves it: fieldRefs from the pod, then $(VAR) expansion in order. */
function resolveEnv(pod: IPod, c: IContainer): Record<string, string> {
  const out: Record<string, string> = {};
  const fields: Record<string, string | undefined> = { 'metadata.namespace': pod.metadata?.namespace, 'spec.serviceAccountName': pod.spec?.serviceAccountName };
  for (const e of c.env ?? []) {
    if (e.valueFrom) {
      const path = e.valueFrom.fieldRef?.fieldPath ?? '';
      const v = fields[path];
      assert.ok(v !== undefined, `${e.name}: unsupported valueFrom ${JSON.stringify(e.valueFrom)}`);
      out[e.name] = v;
    } else {
      out[e.name] = (e.value ?? '').replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name?: string) => (m === '$$' ? '$' : name !== undefined && name in out ? out[name]! : m));
    }
  }
  return out;
}

describe('an injected pod, run for real', () => {
  let lab: Lab;
  let identity: MeshIdentity;
  let a: Pod;
  let b: Pod;
  let proxyA: PodProcess;
  let proxyB: PodProcess;
  let webPod: IPod;
  let apiPod: IPod;
  let webEnv: Record<string, string>;
  let apiEnv: Record<string, string>;
  let webId: string;
  const volumes: string[] = [];

  const scrape = async (pod: Pod): Promise<string> => (await pod.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:4191/metrics'])).stdout;
  const sum = (text: string, name: string, ...parts: string[]): number => {
    let n = 0;
    for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && parts.every((p) => line.includes(p))) n += Number(line.split(' ').pop());
    return n;
  };

  /** The projected identity volume: a directory with what kubelet would project into it. */
  async function identityVolume(pod: IPod, sa: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `mesh-injected-${sa}-`));
    await chmod(dir, 0o755);
    volumes.push(dir);
    await writeFile(join(dir, SIDECAR.tokenFile), await readFile(await identity.token(NS, sa)), { mode: 0o444 });
    const anchors = pod.metadata?.annotations?.[RECORD.trustAnchors];
    assert.ok(anchors, 'the trust anchors annotation');
    await writeFile(join(dir, SIDECAR.trustAnchorsFile), anchors, { mode: 0o444 });
    return dir;
  }

  /** The proxy env from the patched spec, with the substitutions described at the top (and only those). */
  async function proxyEnvFor(pod: IPod, sa: string, control: Pod): Promise<Record<string, string>> {
    const env = resolveEnv(pod, container(pod, SIDECAR.proxyContainer));
    const dir = await identityVolume(pod, sa);
    const mount = (p: string | undefined): string => {
      assert.ok(p !== undefined && p.startsWith(`${SIDECAR.identityDir}/`), `${p} is in the identity volume`);
      return join(dir, p.slice(SIDECAR.identityDir.length + 1));
    };
    return {
      ...env,
      [PROXY_ENV.identityTokenFile]: mount(env[PROXY_ENV.identityTokenFile]),
      [PROXY_ENV.identityTrustAnchors]: mount(env[PROXY_ENV.identityTrustAnchors]),
      [PROXY_ENV.identityUrl]: `https://${control.ipv4}:${IDENTITY_PORT}`,
    };
  }

  before(async () => {
    identity = await MeshIdentity.create();
    webId = identity.name(NS, 'web');
    const config: InjectorConfig = {
      image: 'ghcr.io/example/mesh:test',
      imagePullPolicy: 'IfNotPresent',
      version: 'test',
      controlPlaneNamespace: 'mesh',
      trustDomain: identity.trustDomain,
      trustAnchorsPem: await readFile(identity.anchors, 'utf8'),
      identityUrl: 'https://mesh-identity.mesh.svc.cluster.local:8080',
      nativeSidecar: false,
      injectedBy: 'webhook',
    };
    const ns: NamespaceInfo = { name: NS, labels: {}, annotations: {} };
    webPod = patched(deploymentPod('web', { [CONFIG.skipOutboundPorts]: '9999' }, []), ns, config);
    apiPod = patched(deploymentPod('api', { [CONFIG.opaquePorts]: '7001' }, [8080, 7001, 9999]), ns, config);

    lab = await Lab.create();
    const control = await lab.pod('mesh');
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await identity.startService(control);

    // (a) mesh-init, with the init container's own arguments.
    const webInit = container(webPod, SIDECAR.initContainer).args ?? [];
    const apiInit = container(apiPod, SIDECAR.initContainer).args ?? [];
    assert.ok(webInit.join(' ').includes('--skip-outbound-ports 9999'), webInit.join(' '));
    await Promise.all([meshInit(a, webInit), meshInit(b, apiInit)]);

    // (b) mesh-proxy, with the proxy container's environment.
    webEnv = await proxyEnvFor(webPod, 'web', control);
    apiEnv = await proxyEnvFor(apiPod, 'api', control);
    assert.equal(webEnv[PROXY_ENV.identityName], webId, 'kubelet-expanded identity name');
    assert.equal(apiEnv[PROXY_ENV.identityName], identity.name(NS, 'api'));
    assert.match(apiEnv[PROXY_ENV.opaquePorts]!, /(^|,)7001(,|$)/, "api's injected opaque ports carry the annotation");
    assert.doesNotMatch(webEnv[PROXY_ENV.opaquePorts]!, /(^|,)7001(,|$)/);
    const apiId = apiEnv[PROXY_ENV.identityName]!;
    // Discovery's stand-ins (see the top): api's addresses and its opaque ports.
    const discovered = {
      [PROXY_ENV.meshedDestinations]: `${b.ipv4}=${apiId},${b.ipv6}=${apiId}`,
      [PROXY_ENV.opaquePorts]: [webEnv[PROXY_ENV.opaquePorts], apiEnv[PROXY_ENV.opaquePorts]].filter((x) => x).join(','),
    };
    [proxyA, proxyB] = await Promise.all([startProxy(a, { ...webEnv, ...discovered }), startProxy(b, apiEnv)]);
    await proxiesReady(a, b);

    const app = b.spawn(node, [fixture('http-server.js'), '8080']);
    await app.waitForLine(/^listening/);
    // The echo server speaks first: a greeting line before reading anything.
    await startEcho(b, ['[::]:9999', '[::]:7001']);
  });

  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
    for (const d of volumes) await rm(d, { recursive: true, force: true });
  });

  it('skips web\'s outbound port 9999: the connection leaves the app\'s own socket, untouched by its proxy', async () => {
    const r = await tcpClient(a, b.ipv4, 9999, 4096, APP_UID);
    assert.equal(r.ok, true, JSON.stringify(r));
    // api's proxy (not skipping inbound 9999) accepts it straight from web's app socket, in plaintext:
    // had web's proxy carried it, the source would be the proxy's own socket and it would arrive over mTLS.
    const src = escape(r.local!);
    await proxyB.waitForLine(new RegExp(`accepted direction=inbound src=${src} local=\\S+ dst=${escape(b.ipv4)}:9999`));
    // The app behind api's proxy sees that proxy, as any inbound connection would.
    assert.equal(greetingPeer(r.greeting), b.ipv4);
    // A marker that web's proxy does carry: once it is logged, the absence of 9999 means something.
    const marker = await tcpClient(a, b.ipv4, 7001, 16, APP_UID);
    assert.equal(marker.ok, true, JSON.stringify(marker));
    await proxyA.waitForLine(new RegExp(`accepted direction=outbound src=${escape(marker.local!)} `));
    assert.doesNotMatch(proxyA.lines().join('\n'), /dst=\S+:9999/);
    assert.equal(proxyB.lines().filter((l) => /secured direction=inbound .*dst=\S+:9999/.test(l)).length, 0, 'not over mTLS');
    assert.equal(sum(await scrape(a), 'tcp_open_total', 'target_addr', ':9999"'), 0, "no connection to 9999 in web's proxy metrics");
  });

  it("forwards api's opaque port 7001 without detection, over mTLS: a server-first banner arrives at once", async () => {
    const script = `s=$(date +%s%N); exec 3<>/dev/tcp/${b.ipv4}/7001; IFS= read -r -t 5 line <&3; e=$(date +%s%N); echo "$(( (e - s) / 1000000 )) $line"`;
    const r = await a.execOk('bash', ['-c', script], { uid: APP_UID });
    const [ms, ...rest] = r.stdout.trim().split(' ');
    const banner = rest.join(' ');
    assert.match(banner, /^peer=\S+ local=\S+:7001$/, r.stdout);
    assert.ok(Number(ms) < 1000, `banner after ${ms} ms`);
    await proxyB.waitForLine(new RegExp(`secured direction=inbound src=${escape(a.ipv4)}:\\d+ dst=${escape(b.ipv4)}:7001 client_id=${escape(webId)} protocol=tunnel`));
    await proxyB.waitForLine(new RegExp(`tunnelled direction=inbound src=${escape(a.ipv4)}:\\d+ dst=${escape(b.ipv4)}:7001 client_id=${escape(webId)} stream=\\d+`));
    // web's proxy forwarded at once, without sniffing the (silent) client; api's proxy only told its
    // peer's mTLS apart from plaintext (protocol=tls), then took "tunnel" from the connection header:
    // the connection is a stream of the tunnel session between the proxies.
    assert.doesNotMatch(proxyA.lines().join('\n'), /detected direction=outbound .*dst=\S+:7001/, "no detection in web's proxy");
    assert.doesNotMatch(proxyB.lines().join('\n'), /detected direction=inbound .*dst=\S+:7001 protocol=(?!tls\b)/, "no application-protocol detection in api's proxy");
    assert.ok(sum(await scrape(b), 'tcp_open_total', 'direction="inbound"', `target_addr="${b.ipv4}:7001"`, 'tls="true"', `client_id="${webId}"`) >= 1);
  });

  it("serves HTTP to api:8080 over mTLS, labelled with web's service-account identity", async () => {
    const r = await a.exec('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://${b.ipv4}:8080/status/200`], { uid: APP_UID });
    assert.equal(r.stdout, '200', r.stderr);
    await eventually(async () => {
      const m = await scrape(b);
      assert.ok(sum(m, 'request_total', 'direction="inbound"', 'tls="true"', `client_id="${webId}"`, `target_addr="${b.ipv4}:8080"`) >= 1, m);
    });
    const onA = await scrape(a);
    assert.ok(sum(onA, 'request_total', 'direction="outbound"', 'tls="true"', `server_id="${apiEnv[PROXY_ENV.identityName]}"`) >= 1, onA);
  });
});
