// The sidecar rendered from the contract: the mesh-init init container, the
// mesh-proxy container and the identity volume. Pure: settings and config in,
// Kubernetes objects out (typed by the upstream schema, so a misspelt field
// does not compile).
import type { IContainer, IEnvVar, IVolume } from 'kubernetes-models/v1';
import {
  ADMIN_PATHS,
  IDENTITY_AUDIENCE,
  IMAGE_COMMANDS,
  INIT_FLAGS,
  PROXY_ENV,
  PROXY_OWN_PORTS,
  PROXY_PORTS,
  PROXY_UID,
  SIDECAR,
  identityTokenPath,
  trustAnchorsPath,
} from '../contract/sidecar.js';
import { RECORD } from '../contract/annotations.js';
import type { InjectorConfig } from './config.js';
import type { SidecarSettings } from './settings.js';

export interface Sidecar {
  /** mesh-init, and the proxy too when it is a native sidecar: in this order, before the pod's own. */
  initContainers: IContainer[];
  /** The proxy as the pod's first container (not native), or nothing. */
  containers: IContainer[];
  volumes: IVolume[];
}

/** mesh-init's arguments: the settings in mesh-init's own flags; its defaults are the proxy's ports and uid. */
export function initArgs(s: SidecarSettings): string[] {
  const args = [
    INIT_FLAGS.mode, s.mode,
    INIT_FLAGS.inboundPort, String(PROXY_PORTS.inbound),
    INIT_FLAGS.outboundPort, String(PROXY_PORTS.outbound),
    INIT_FLAGS.proxyUid, String(PROXY_UID),
    // The proxy's admin and tap ports are always reached directly (kubelet's probes, Prometheus).
    INIT_FLAGS.proxyPorts, `${PROXY_OWN_PORTS.from}-${PROXY_OWN_PORTS.to}`,
  ];
  if (s.skipInboundPorts !== '') args.push(INIT_FLAGS.skipInboundPorts, s.skipInboundPorts);
  if (s.skipOutboundPorts !== '') args.push(INIT_FLAGS.skipOutboundPorts, s.skipOutboundPorts);
  if (s.skipSubnets !== '') args.push(INIT_FLAGS.skipSubnets, s.skipSubnets);
  return args;
}

function initContainer(s: SidecarSettings, c: InjectorConfig): IContainer {
  return {
    name: SIDECAR.initContainer,
    image: c.image,
    imagePullPolicy: c.imagePullPolicy,
    command: [IMAGE_COMMANDS.init],
    args: initArgs(s),
    // Writing iptables needs NET_ADMIN and NET_RAW, and as a non-root user the
    // capabilities would only take effect through file capabilities, which
    // no_new_privs (allowPrivilegeEscalation: false) disables: so uid 0, but
    // with every other capability dropped and nothing writable but /run.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: SIDECAR.xtablesLockVolume, mountPath: '/run' }],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

function env(s: SidecarSettings, c: InjectorConfig): IEnvVar[] {
  return [
    // The identity name is made by kubelet from the pod's own namespace and
    // service account ($(VAR) expansion), so it is right even when the pod
    // spec omits serviceAccountName or the template has no namespace yet.
    { name: 'MESH_POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'MESH_POD_SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
    { name: PROXY_ENV.inboundPort, value: String(PROXY_PORTS.inbound) },
    { name: PROXY_ENV.outboundPort, value: String(PROXY_PORTS.outbound) },
    { name: PROXY_ENV.adminPort, value: String(PROXY_PORTS.admin) },
    { name: PROXY_ENV.inboundMode, value: s.mode },
    { name: PROXY_ENV.opaquePorts, value: s.opaquePorts },
    { name: PROXY_ENV.logLevel, value: s.logLevel },
    { name: PROXY_ENV.identityUrl, value: c.identityUrl },
    { name: PROXY_ENV.identityName, value: `$(MESH_POD_SERVICE_ACCOUNT).$(MESH_POD_NAMESPACE).serviceaccount.identity.${c.trustDomain}` },
    { name: PROXY_ENV.identityTokenFile, value: identityTokenPath },
    { name: PROXY_ENV.identityTrustAnchors, value: trustAnchorsPath },
    // Discovery: the destination service, asked in the pod's namespace (short names complete there).
    ...(c.destinationUrl === undefined
      ? []
      : [
          { name: PROXY_ENV.destinationUrl, value: c.destinationUrl },
          { name: PROXY_ENV.namespace, value: '$(MESH_POD_NAMESPACE)' },
        ]),
  ];
}

function proxyContainer(s: SidecarSettings, c: InjectorConfig, native: boolean): IContainer {
  const tproxy = s.mode === 'tproxy';
  const probe = (path: string) => ({ httpGet: { path, port: PROXY_PORTS.admin }, periodSeconds: 10, timeoutSeconds: 1 });
  const resources = {
    ...(Object.keys(s.resources.requests).length > 0 ? { requests: s.resources.requests } : {}),
    ...(Object.keys(s.resources.limits).length > 0 ? { limits: s.resources.limits } : {}),
  };
  return {
    name: SIDECAR.proxyContainer,
    image: c.image,
    imagePullPolicy: c.imagePullPolicy,
    // TPROXY's listener needs IP_TRANSPARENT, which a non-root uid gets only from a file capability.
    command: [tproxy ? IMAGE_COMMANDS.proxyTproxy : IMAGE_COMMANDS.proxy],
    ...(native ? { restartPolicy: 'Always' } : {}),
    env: env(s, c),
    ports: [
      { name: SIDECAR.inboundPortName, containerPort: PROXY_PORTS.inbound, protocol: 'TCP' },
      { name: SIDECAR.adminPortName, containerPort: PROXY_PORTS.admin, protocol: 'TCP' },
    ],
    livenessProbe: probe(ADMIN_PATHS.live),
    readinessProbe: probe(ADMIN_PATHS.ready),
    // Ready means certified. A native sidecar holds the next init container (and
    // the app) back until this passes; a regular first container does the same
    // through its postStart hook, which kubelet waits for before starting the next.
    ...(native
      ? { startupProbe: { ...probe(ADMIN_PATHS.ready), periodSeconds: 1, failureThreshold: 120 } }
      : { lifecycle: { postStart: { exec: { command: [IMAGE_COMMANDS.await, '--timeout', '120s'] } } } }),
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    securityContext: {
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: tproxy,
      capabilities: tproxy ? { drop: ['ALL'], add: ['NET_ADMIN'] } : { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: SIDECAR.identityVolume, mountPath: SIDECAR.identityDir, readOnly: true }],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

function volumes(): IVolume[] {
  return [
    {
      name: SIDECAR.identityVolume,
      projected: {
        sources: [
          // A token for the identity service alone: the pod's default token (audience: the API server) never leaves the pod.
          { serviceAccountToken: { audience: IDENTITY_AUDIENCE, expirationSeconds: SIDECAR.tokenExpirationSeconds, path: SIDECAR.tokenFile } },
          // The anchors travel in the pod's own annotation: a ConfigMap in the control
          // plane's namespace cannot be mounted from another namespace.
          { downwardAPI: { items: [{ path: SIDECAR.trustAnchorsFile, fieldRef: { fieldPath: `metadata.annotations['${RECORD.trustAnchors}']` } }] } },
        ],
        defaultMode: 0o444,
      },
    },
    { name: SIDECAR.xtablesLockVolume, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
  ];
}

export function renderSidecar(s: SidecarSettings, c: InjectorConfig): Sidecar {
  const native = s.nativeSidecar ?? c.nativeSidecar;
  const proxy = proxyContainer(s, c, native);
  return {
    initContainers: native ? [initContainer(s, c), proxy] : [initContainer(s, c)],
    containers: native ? [] : [proxy],
    volumes: volumes(),
  };
}
