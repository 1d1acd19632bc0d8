// The control plane's identity for lab pods lives in lab/ (the demo uses it too).
export { MeshIdentity, IDENTITY_PORT, controllerBin, type MeshIdentityOptions } from '../lab/identity.js';
