// One contract for what a meshed pod is: the sidecar (ports, uid, variables,
// flags, mounts) and the annotations that ask for and shape it.
export * from './sidecar.js';
export * as annotations from './annotations.js';
