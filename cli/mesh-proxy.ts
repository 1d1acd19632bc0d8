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
  // Exit now: listeners opened before the one that failed would keep the process up,
  // serving (or live but never ready) while it says it failed.
  if (!proxy) process.exit(1);
  guardFaults(log, { count: (kind) => proxy.metrics.internalError(kind) });
  // Not `once`: with no listener left, a second SIGTERM during the drain would end the
  // process at once (Node's default action), cutting what the grace is there to finish.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return log.info('already shutting down', { signal });
    stopping = true;
    log.info('shutting down', { signal, grace: `${graceMs}ms` });
    proxy.close(graceMs).then(
      () => process.exit(0),
      (err: Error) => {
        log.error('shutdown failed', { reason: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return 0;
}

process.exitCode = await main();
