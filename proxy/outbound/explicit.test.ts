// The explicit proxy (apps that dial 4140 themselves, HTTP_PROXY style) with a
// client that sends its request and half-closes at once, before the proxy has
// resolved and dialled the target. The head used to be put back on the socket
// only after that wait, by which time 'end' had come and the unshift destroyed
// the socket: the request was lost (and a CONNECT's upstream left open).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Connections } from '../connections.js';
import { Log } from '../log.js';
import { explicitProxy } from './explicit.js';

const quiet = new Log('error', () => {});
const closes: (string | undefined)[] = [];
const connMetrics = { close: (_r: number, _w: number, e: string | undefined) => void closes.push(e), labels: {} };
const metrics = { pending: () => ({ settle: () => connMetrics }), protocolError: () => {} };
const fds = { acquire: () => {}, release: () => {}, canAccept: () => true };
const servers: net.Server[] = [];
const sockets = new Set<Socket>();
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

async function listen(onConn: (s: Socket) => void): Promise<number> {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    onConn(s);
  });
  servers.push(srv);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return (srv.address() as AddressInfo).port;
}

/** The explicit proxy on a loopback port; `serveH1` stands in for the HTTP stage. */
async function proxy(serveH1: (s: Socket) => void = () => {}): Promise<number> {
  const conns = new Connections({ log: quiet, metrics: metrics as never, fds: fds as never, inboundMode: 'redirect', dialMeshed: () => Promise.reject(new Error('not meshed')) });
  const handle = explicitProxy({
    log: quiet, metrics: metrics as never, conns, http: { serveH1 } as never, peerOf: () => undefined, tlsLabels: () => ({ tls: 'no_identity', no_tls_reason: 'disabled' }),
    headTimeoutMs: 5000, maxHeadBytes: 8192, ownPort: 1, connectTimeoutMs: 2000,
  });
  return listen((s) => handle(s, 'test'));
}

/** Sends `bytes` then a FIN at once; resolves with what the proxy answered, once it closed. */
function sendAndHalfClose(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end(bytes));
    sockets.add(c);
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => resolve(got));
  });
}

describe('explicit proxy, client half-closed at once', () => {
  it('CONNECT: the bytes after the head reach the upstream, then its FIN', async () => {
    let upGot = '';
    let upEnded = false;
    const upstream = await listen((s) => {
      s.on('data', (d: Buffer) => (upGot += d.toString('latin1')));
      s.on('end', () => {
        upEnded = true;
        s.end();
      });
    });
    const got = await sendAndHalfClose(await proxy(), `CONNECT 127.0.0.1:${upstream} HTTP/1.1\r\nHost: 127.0.0.1:${upstream}\r\n\r\nhello`);
    assert.match(got, /^HTTP\/1\.1 200 Connection established\r\n\r\n$/);
    assert.equal(upGot, 'hello');
    assert.equal(upEnded, true);
  });

  it('absolute-form: the HTTP stage gets the socket with the whole request still to read, then its end', async () => {
    // A name, not an address: the proxy resolves it, and the FIN arrives meanwhile.
    const request = 'GET http://localhost:9/x HTTP/1.0\r\nHost: localhost:9\r\n\r\n';
    const served = new Promise<{ destroyed: boolean; text: string }>((resolve) => {
      void proxy((s) => {
        const destroyed = s.destroyed;
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.on('end', () => {
          resolve({ destroyed, text });
          s.end();
        });
        s.resume();
      }).then((port) => sendAndHalfClose(port, request));
    });
    const { destroyed, text } = await served;
    assert.equal(destroyed, false);
    assert.equal(text, request);
  });
});
