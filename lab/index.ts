// lab: private networks of "pods" (network namespaces) for the end-to-end tests and `mesh demo`.
export { eventually, patienceMs, type EventuallyOptions } from './eventually.js';
export { Lab } from './lab.js';
export { Pod, type ExecOptions, type ExecResult, type SpawnOptions } from './pod.js';
export { PodProcess } from './pod-process.js';
export { startDestination, type LabDestination, type StartDestinationOptions } from './destination.js';
