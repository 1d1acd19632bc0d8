// The logger is shared by every process (proxy, controllers, CLI): it lives in shared/log.ts.
export * from '../shared/log.js';
