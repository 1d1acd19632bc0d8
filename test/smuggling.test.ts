// Request smuggling through both proxies: a body must reach the server in
// exactly one framing, whatever the method. Node's HTTP client frames a body
// by method (raw for GET, OPTIONS, DELETE), so a chunked body on those methods
// used to arrive unframed and the server read it as a second request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type Pod, type PodProcess } from './harness/index.js';
import { MeshIdentity } from './identity-lab.js';
import { fixture, meshInit, node, proxiesReady, startProxy } from './mesh.js';

interface Seen {
  conn: number;
  method?: string;
  target?: string;
  host?: string;
  framing?: string;
  body?: string;
  error?: string;
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const hidden = 'GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n';
const chunked = (body: string): string => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;

for (const mode of ['plain', 'mtls'] as const) describe(`request smuggling (${mode})`, () => {
  let identity: MeshIdentity | undefined;
  let lab: Lab;
  let a: Pod;
  let b: Pod;
  let backend: PodProcess;

  before(async () => {
    lab = await Lab.create();
    [a, b] = [await lab.pod('a'), await lab.pod('b')];
    await meshInit(a);
    await meshInit(b);
    let [envA, envB]: Record<string, string>[] = [{}, {}];
    if (mode === 'mtls') {
      identity = await MeshIdentity.create();
      const control = await lab.pod('mesh');
      await identity.startService(control);
      const pair = await identity.meshedPair(control, 'default', 'a', b, 'b');
      [envA, envB] = [pair.client, pair.server];
    }
    await startProxy(a, envA);
    await startProxy(b, envB);
    await proxiesReady(a, b);
    backend = b.spawn(node, [fixture('raw-backend.js'), '7070']);
    await backend.waitForLine(/^listening/);
  });
  after(async () => {
    await lab?.destroy();
    await identity?.destroy();
  });

  /** Sends raw bytes from A to B's backend; returns the client's view and every request the backend read. */
  // Each case names a Host of its own, and the backend's lines for it are read
  // once the backend has printed the first one (it prints before it answers).
  // The client keeps its side open: a proxy may drop the response to a client
  // that half-closed.
  const send = async (host: string, bytes: string): Promise<{ text: string; seen: Seen[] }> => {
    const from = backend.lines().length;
    const r = await a.execOk(node, [fixture('raw-client.js'), b.ipv4, '7070', hex(bytes), '--keep-open', '--wait=1500'], { uid: 1000 });
    const text = (JSON.parse(r.stdout.trim()) as { text: string }).text;
    await backend.waitForLine(new RegExp(`"host":"${host}"`));
    const seen = backend.lines().slice(from).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Seen);
    return { text, seen };
  };

  for (const method of ['GET', 'OPTIONS', 'DELETE', 'POST']) {
    it(`${method} with a chunked body reaches the server as one request, its body framed`, async () => {
      const body = hidden;
      const host = `${method.toLowerCase()}.${mode}`;
      const { text, seen } = await send(host, `${method} / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(body)}`);
      assert.deepEqual(seen.map((s) => [s.method, s.target, s.body]), [[method, '/', body]], `backend saw: ${JSON.stringify(seen)}`);
      assert.equal(seen[0]!.framing, 'chunked');
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'one response for one request');
    });
  }
});
