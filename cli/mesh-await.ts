#!/usr/bin/env node
// mesh-await: the proxy container's postStart hook. kubelet starts a pod's
// containers in order and does not start the next until this hook returns, so
// the app starts only once the proxy is ready (certified): its first
// connections are not refused or sent in plaintext. Exit 0 when ready, 1 when
// not within --timeout (kubelet then restarts the proxy container).
import http from 'node:http';
import { ADMIN_PATHS, adminUrl } from '../contract/sidecar.js';

function ready(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(adminUrl(ADMIN_PATHS.ready), { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const i = process.argv.indexOf('--timeout');
const raw = i < 0 ? '120s' : (process.argv[i + 1] ?? '');
const m = /^(\d+)s$/.exec(raw);
if (m === null) {
  process.stderr.write(`mesh-await: --timeout: "${raw}" is not a number of seconds (e.g. 120s)\n`);
  process.exit(2);
}
const deadline = Date.now() + Number(m[1]) * 1000;
while (!(await ready())) {
  if (Date.now() > deadline) {
    process.stderr.write(`mesh-await: the proxy was not ready within ${raw}\n`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}
