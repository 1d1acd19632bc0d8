// The end-to-end harness: network-namespace pods (lab/) and eventually().
export * from '../../lab/index.js';
