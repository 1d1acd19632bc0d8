// The two-pod story most end-to-end suites start from: pods a and b, each
// meshed by mesh-init with its proxy running and ready. In 'mtls' mode an
// identity service runs in a third pod, a's proxy is certified as service
// account 'a' and b's as 'b' (namespace default), and a knows b is meshed:
// HTTP/1 and opaque streams between them travel over mutual TLS.
import { Lab, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { meshInit, proxiesReady, startProxy } from './mesh.js';

export interface PodPair {
  lab: Lab;
  a: Pod;
  b: Pod;
  proxyA: PodProcess;
  proxyB: PodProcess;
  identity: MeshIdentity | undefined;
  destroy(): Promise<void>;
}

/** `env` goes to both proxies (on top of the identity variables in 'mtls' mode). */
export async function meshedPodPair(mode: 'plain' | 'mtls', env: Record<string, string> = {}): Promise<PodPair> {
  const lab = await Lab.create();
  let identity: MeshIdentity | undefined;
  const destroy = async (): Promise<void> => {
    await lab.destroy();
    await identity?.destroy();
  };
  try {
    const [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    await meshInit(b);
    let [envA, envB] = [env, env];
    if (mode === 'mtls') {
      identity = await MeshIdentity.create();
      const control = await lab.pod('mesh');
      await identity.startService(control);
      const pair = await identity.meshedPair(control, 'default', 'a', b, 'b');
      [envA, envB] = [{ ...env, ...pair.client }, { ...env, ...pair.server }];
    }
    const proxyA = await startProxy(a, envA);
    const proxyB = await startProxy(b, envB);
    await proxiesReady(a, b);
    return { lab, a, b, proxyA, proxyB, identity, destroy };
  } catch (err) {
    // A half-built pair must not outlive the failed setup.
    await destroy().catch(() => {});
    throw err;
  }
}
