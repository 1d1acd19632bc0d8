#!/usr/bin/env -S node --max-semi-space-size=4 --single-threaded-gc
// mesh-proxy: the sidecar. Configuration comes only from MESH_PROXY_* variables.
import { ConfigError, loadConfig } from '../proxy/config.js';
import { guardFaults } from '../proxy/faults.js';
import { startProxy } from '../proxy/index.js';
import { Log } from '../shared/log.js';
import { missingNodeFlags, proxyNodeFlags } from '../proxy/runtime.js';

const graceMs = 10_000;

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mesh-proxy: ${err.message} [${err.code}]\n`);
      return 2;
    }
    throw err;
  }
  const log = new Log(config.logLevel);
  const missing = missingNodeFlags();
  if (missing.length > 0) log.info('started without the recommended Node flags: more memory, longer GC pauses', { missing: missing.join(' '), recommended: proxyNodeFlags.join(' ') });
  if (process.getuid?.() === 0) {
    log.warn('running as root: mesh-init skips only the proxy uid (2102), so outbound connections may loop back into the proxy');
  }
  const proxy = await startProxy(config, log).catch((err: Error & { code?: string }) => {
    log.error('start-up failed', { code: err.code, reason: err.message });
    return undefined;
  });
  if (!proxy) return 1;
  guardFaults(log, { count: (kind) => proxy.metrics.internalError(kind) });
  const stop = (signal: string): void => {
    log.info('shutting down', { signal, grace: `${graceMs}ms` });
    proxy.close(graceMs).then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

process.exitCode = await main();
