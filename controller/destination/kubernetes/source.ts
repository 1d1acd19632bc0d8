import type { Log } from '../../../shared/log.js';
import type { Source } from '../source.js';
export async function createKubernetesSource(_o: { kubeconfig?: string; trustDomain: string; log: Log }): Promise<Source> {
  throw new Error('not yet');
}
