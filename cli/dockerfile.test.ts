// The Dockerfile is not built here (no container engine): this keeps it true to
// the tree. Every COPY source exists, every folder tsc compiles is copied, what
// the runtime stage takes from the build stage is what the build makes, and the
// commands the injector writes into pods are the ones the image installs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { IMAGE_COMMANDS, PROXY_UID } from '../contract/sidecar.js';

const root = new URL('../../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8').replace(/\\\n/g, ' ');
const copies = dockerfile.split('\n').filter((l) => /^COPY\s/.test(l)).map((l) => l.trim().split(/\s+/).slice(1));

describe('Dockerfile', () => {
  it('copies only paths that exist in the repository', () => {
    const local = copies.filter((args) => !args[0]!.startsWith('--from='));
    assert.ok(local.length > 5);
    for (const args of local) for (const src of args.slice(0, -1)) assert.ok(existsSync(new URL(src, root)), `COPY ${src}: no such path`);
  });

  it('copies every folder tsconfig.json compiles', () => {
    const tsconfig = JSON.parse(readFileSync(new URL('tsconfig.json', root), 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
    const copied = new Set(copies.filter((a) => !a[0]!.startsWith('--from=')).flatMap((a) => a.slice(0, -1)));
    for (const dir of tsconfig.include) assert.ok(copied.has(dir), `tsconfig compiles ${dir}/ but the Dockerfile does not copy it`);
    assert.ok(copies.some((a) => a[0] === '--from=build' && a[1] === `/src/${tsconfig.compilerOptions.outDir}`), 'the runtime takes the compiled output');
  });

  it("takes the native addon under the name binding.gyp builds", () => {
    const target = /"target_name":\s*"([^"]+)"/.exec(readFileSync(new URL('binding.gyp', root), 'utf8'))![1];
    assert.ok(copies.some((a) => a[0] === '--from=build' && a[1] === `/src/build/Release/${target}.node`));
  });

  it('installs every command the injector and install write into pods, each pointing at a compiled CLI', () => {
    for (const command of Object.values(IMAGE_COMMANDS)) assert.match(dockerfile, new RegExp(`/usr/local/bin/(\\$b|${command})\\b`), command);
    const loop = /for b in ([^;]+); do/.exec(dockerfile)![1]!.trim().split(/\s+/);
    for (const b of [...loop, 'mesh-proxy']) assert.ok(existsSync(new URL(`cli/${b}.ts`, root)), `cli/${b}.ts`);
    for (const c of Object.values(IMAGE_COMMANDS)) assert.ok(loop.includes(c) || /mesh-proxy/.test(c), `${c} is installed`);
  });

  it('runs as the proxy uid', () => {
    assert.match(dockerfile, new RegExp(`^USER ${PROXY_UID}:${PROXY_UID}$`, 'm'));
    assert.match(dockerfile, new RegExp(`useradd -u ${PROXY_UID} `));
  });
});
