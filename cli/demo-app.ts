// The demo's workload: a tiny HTTP service that says who served it and who it
// saw as the client (behind the mesh, that is the local proxy).
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 8080);
const name = process.argv[3] ?? 'api';
let served = 0;
createServer((req, res) => {
  served++;
  // Some failures, so the success rate in the demo's stat table means something.
  const status = req.url?.startsWith('/flaky') ? 503 : 200;
  const body = JSON.stringify({ service: name, served, path: req.url, peer: req.socket.remoteAddress?.replace(/^::ffff:/, '') });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen({ host: '::', port }, () => console.log(`listening :${port}`));
