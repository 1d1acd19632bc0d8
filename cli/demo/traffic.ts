// The demo's users: GET web/shop/N at a steady rate, forever (until SIGTERM).
// Every 2 s: {"ok":n,"failed":n,"statuses":{...},"inventory":{replica:n}}.
//   node traffic.js WEB_URL RPS
import { Agent, request } from 'node:http';

const [url, rpsArg] = process.argv.slice(2);
const rps = Number(rpsArg ?? 10);
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const totals = { ok: 0, failed: 0, statuses: {} as Record<string, number>, inventory: {} as Record<string, number>, db: 0 };
let n = 0;

function once(): void {
  const i = n++;
  const req = request(`${url}/shop/${i}`, { agent, timeout: 5000 }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const status = String(res.statusCode);
      totals.statuses[status] = (totals.statuses[status] ?? 0) + 1;
      // The api's own 503s (1 in 20) are the app's answer, carried faithfully: not a mesh failure.
      if (res.statusCode === 200 || res.statusCode === 503) totals.ok++;
      else totals.failed++;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { api?: { inventory?: string; db?: string } };
        const replica = body.api?.inventory;
        if (replica !== undefined) totals.inventory[replica] = (totals.inventory[replica] ?? 0) + 1;
        if (body.api?.db !== undefined) totals.db++;
      } catch {
        // a proxy's plain-text error: counted by status above
      }
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => {
    totals.failed++;
    totals.statuses.error = (totals.statuses.error ?? 0) + 1;
  });
  req.end();
}

setInterval(once, 1000 / rps);
setInterval(() => console.log(JSON.stringify(totals)), 2000);
process.on('SIGTERM', () => {
  console.log(JSON.stringify(totals));
  process.exit(0);
});
