// The demo's front end: GET /shop/N asks the api for order N over HTTP/1 (by
// its virtual address and name, as an app in a cluster would dial a Service)
// and wraps the answer.
//   node web.js PORT API_ADDR:PORT API_HOST
import { Agent, createServer, request } from 'node:http';

const [port, api, apiHost] = process.argv.slice(2);
const colon = api!.lastIndexOf(':');
const [host, apiPort] = [api!.slice(0, colon), Number(api!.slice(colon + 1))];
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

createServer((req, res) => {
  const n = /^\/shop\/(\d+)/.exec(req.url ?? '')?.[1] ?? '0';
  const up = request({ host, port: apiPort, path: `/orders/${n}`, agent, headers: { host: apiHost }, timeout: 5000 }, (r) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => {
      const text = JSON.stringify({ web: 'ok', api: JSON.parse(Buffer.concat(chunks).toString() || '{}') as unknown });
      res.writeHead(r.statusCode ?? 502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  up.on('timeout', () => up.destroy(new Error('api timed out')));
  up.on('error', (e) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(502, { 'content-type': 'text/plain' }).end(`api: ${e.message}\n`);
  });
  up.end();
}).listen({ host: '::', port: Number(port) }, () => console.log(`listening :${port}`));
