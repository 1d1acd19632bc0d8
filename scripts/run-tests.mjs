// Runs every compiled *.test.js under dist/ with node's test runner.
// Files are listed explicitly: node's default patterns would also pick up the
// test harness's helper modules (anything under a folder named "test").
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const only = process.argv.slice(2);
const files = find('dist').filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/ (did the build run?)');
  process.exit(1);
}
if (process.getuid?.() !== 0) {
  console.error('run-tests: the end-to-end tests make network namespaces and iptables rules: run as root');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-timeout=180000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
