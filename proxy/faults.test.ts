// The last-resort handler: an error nobody handled is logged with its stack and
// counted, the proxy goes on; errors that keep coming end it for a restart.
// Also end to end, in a child process: a throw from one socket's handler
// leaves the other connections served.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Log } from '../shared/log.js';
import { EX_SOFTWARE, faultHandler } from './faults.js';

describe('fault guard', () => {
  it('logs and counts each error; the 11th within a minute exits with EX_SOFTWARE', () => {
    const lines: string[] = [];
    const counted: string[] = [];
    const exits: number[] = [];
    let t = 0;
    const handle = faultHandler(new Log('info', (l) => lines.push(l)), { count: (k) => counted.push(k), now: () => t, exit: (c) => exits.push(c) });
    handle(new TypeError("Cannot read properties of undefined (reading 'finished')"), 'exception');
    assert.match(lines[0]!, / ERROR internal error: a bug cost the connection it happened on; the proxy goes on code=MESH_INTERNAL kind=exception reason="Cannot read properties of undefined \(reading 'finished'\)" stack=/);
    t = 30_000;
    for (let i = 0; i < 9; i++) handle('not an Error', 'rejection');
    assert.deepEqual(exits, [], 'ten in a minute: still serving');
    t = 61_000; // the first has left the minute
    handle(new Error('x'), 'exception');
    assert.deepEqual(exits, []);
    handle(new Error('y'), 'exception');
    assert.deepEqual(exits, [EX_SOFTWARE]);
    assert.deepEqual(counted.filter((k) => k === 'rejection').length, 9);
    assert.match(lines.at(-1)!, /internal errors keep coming: exiting for a restart/);
  });

  it('in a process: a throw from one socket handler costs that connection; another is still answered', async () => {
    // The child serves "pong" per connection; the first connection's handler throws.
    const child = `
      import net from 'node:net';
      import { guardFaults } from ${JSON.stringify(new URL('./faults.js', import.meta.url).href)};
      import { Log } from ${JSON.stringify(new URL('../shared/log.js', import.meta.url).href)};
      guardFaults(new Log('info'), { count: () => {} });
      let n = 0;
      const srv = net.createServer((s) => {
        s.on('data', () => { if (n++ === 0) throw new TypeError('boom'); s.end('pong'); });
      });
      srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\\n'));
    `;
    const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d));
    const port = await new Promise<number>((resolve) => p.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const net = await import('node:net');
    const ask = (): Promise<string> =>
      new Promise((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.write('ping'));
        let got = '';
        c.on('data', (d: Buffer) => (got += d));
        c.on('end', () => resolve(got));
        c.on('error', () => resolve(got));
        setTimeout(() => (c.destroy(), resolve(got)), 500).unref();
      });
    await ask();
    assert.equal(await ask(), 'pong');
    assert.equal(p.exitCode, null, 'still running');
    p.kill();
    assert.match(err, /ERROR internal error: .* reason=boom/);
  });
});
