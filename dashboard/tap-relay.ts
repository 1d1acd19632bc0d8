// GET /api/tap → Server-Sent Events: the tap service's stream for one resource,
// relayed to one browser tab. Each tab has its own upstream stream (on the
// shared HTTP/2 session), closed when the tab goes away. A tab slower than the
// traffic does not make the dashboard buffer: while its socket is full,
// events are counted and dropped, and a `dropped` event says how many once it
// drains (the same marker the proxies send a slow tap).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TAP_SERVICE_PATH, type TapServiceEvent, type TapServiceRequest } from '../contract/tap.js';
import type { JsonStreamClient } from '../shared/api-stream.js';

/** How often an idle stream carries a comment, so the tab notices a dead dashboard and nothing between times it out. */
const HEARTBEAT_MS = 15_000;

export interface TapRelayOptions {
  /** Where the tap service's streams are opened (one shared session; a fake in tests). */
  client: Pick<JsonStreamClient, 'open'>;
  /** Per tab; the proxies sample beyond it. */
  maxRps: number;
}

export function relayTap(req: IncomingMessage, res: ServerResponse, request: TapServiceRequest, o: TapRelayOptions): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // The tab asks once per Start; reconnecting on its own would re-open a tap the operator stopped.
    connection: 'keep-alive',
  });
  res.write('retry: 86400000\n\n');
  let dropped = 0;
  let full = false;
  let done = false;
  const send = (event: string | undefined, data: unknown): void => {
    if (done) return;
    if (full) {
      dropped++;
      return;
    }
    full = !res.write(`${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`);
  };
  res.on('drain', () => {
    full = false;
    if (dropped > 0) {
      const count = dropped;
      dropped = 0;
      send(undefined, { kind: 'dropped', count, by: 'dashboard' });
    }
  });
  const heartbeat = setInterval(() => {
    if (!full) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  let stream: { close(): void } | undefined;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    stream?.close();
    res.end();
  };
  stream = o.client.open(TAP_SERVICE_PATH, { ...request, maxRps: request.maxRps ?? o.maxRps }, {
    onMessage: (m) => send(undefined, m as TapServiceEvent),
    onEnd(error) {
      if (error !== undefined) {
        // The code the page shows: the tap service's own (MESH_TAP_NO_PODS, …) when it refused, else ours.
        send('end', { code: error.serverCode ?? error.code, message: error.message.replace(/^.*refused \(\d+ [A-Z_]+\): /, '') });
      }
      finish();
    },
  });
  if (done) stream.close();
  // The tab closed, navigated away or pressed Stop.
  req.on('close', finish);
  res.on('close', finish);
}
