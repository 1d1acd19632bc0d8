// A tap watcher that takes everything a proxy sends as fast as it comes and
// keeps nothing: the flooded consumer of the `mesh-tap` bench path.
//   tap-watcher URL SERVER_NAME CA CERT KEY MAX_RPS
// Prints {"events":n,"dropped":n} once a second (dropped: what the proxy said it dropped).
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { TAP_WATCH_PATH } from '../contract/tap.js';

const [url, servername, ca, cert, key, maxRps] = process.argv.slice(2);
const session = http2.connect(url!, { ca: readFileSync(ca!), cert: readFileSync(cert!), key: readFileSync(key!), servername, minVersion: 'TLSv1.3' });
session.on('error', (e) => {
  console.log(JSON.stringify({ error: e.message }));
  process.exit(1);
});
const req = session.request({ ':method': 'POST', ':path': TAP_WATCH_PATH, 'content-type': 'application/json' });
let events = 0;
let dropped = 0;
req.on('response', (h) => console.log(JSON.stringify({ status: Number(h[':status']) })));
req.on('data', (b: Buffer) => {
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) events++;
  // A marker is rare: parse only chunks that carry one.
  const at = b.indexOf('"dropped"');
  if (at >= 0) {
    const m = /"count":(\d+)/.exec(b.toString('latin1', at, at + 40));
    if (m) dropped += Number(m[1]);
  }
});
req.on('error', () => {});
req.end(JSON.stringify({ maxRps: Number(maxRps) }));
setInterval(() => console.log(JSON.stringify({ events, dropped })), 1000).unref();
process.on('SIGTERM', () => {
  console.log(JSON.stringify({ events, dropped }));
  process.exit(0);
});
